# The edge (TLS through bufferevent_openssl, AUTH relaying, PROXY protocol):
# its sources are in proxy/ and so part of the core library, which the daemon,
# the generic unit-test rule and the fuzz harnesses link; this fragment adds
# the one library they need besides the core's: libevent's OpenSSL glue.
EDGE_LIBS := $(shell pkg-config --libs libevent_openssl 2>/dev/null)
LDLIBS += $(EDGE_LIBS)
