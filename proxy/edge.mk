# The edge (TLS through bufferevent_openssl, AUTH relaying, PROXY protocol):
# its sources are in proxy/ and part of the core library; this fragment adds
# the libevent OpenSSL glue and the unit tests' explicit rules.
EDGE_LIBS := $(shell pkg-config --libs libevent_openssl 2>/dev/null)
LDLIBS += $(EDGE_LIBS)
