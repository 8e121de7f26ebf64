# daemon/: the proxy front-end: workers and their event loops, accepting
# connections, the SMTP session, the upstream connection and its pool, TLS and
# the runtime a reload assembles.  main.c is the entry point and stays out of
# the core library.
CORE_SRCS += $(filter-out daemon/main.c,$(wildcard daemon/*.c))
# STARTTLS on both legs runs over bufferevent_openssl.
override LDLIBS += $(shell $(PKG_CONFIG) --libs libevent_openssl 2>/dev/null)

$(BUILD)/smtpgate: $(BUILD)/daemon/main.o $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

-include $(BUILD)/daemon/main.d

# The status page is built into the object that serves it.
$(BUILD)/daemon/status_page.o: daemon/status_page.html
