# plugins/state: the key-value state layer (local and Redis backends, the
# common options, client keys, exemptions) that the ratelimit and greylist
# plugins link.  Each plugin's fragment includes this one; the guard makes
# it count once however many do.
ifndef SMTPGATE_STATE_MK
SMTPGATE_STATE_MK := 1

STATE_SRCS := plugins/state/kv_store.c plugins/state/kv_clock.c plugins/state/kv_local.c plugins/state/kv_redis.c \
              plugins/state/kv_options.c plugins/state/client_key.c plugins/state/exempt.c
STATE_OBJS := $(STATE_SRCS:%.c=$(BUILD)/%.o)
STATE_CFLAGS := $(shell $(PKG_CONFIG) --cflags hiredis 2>/dev/null)
STATE_LIBS := $(shell $(PKG_CONFIG) --libs hiredis 2>/dev/null) $(shell $(PKG_CONFIG) --libs libevent 2>/dev/null) -lpthread
$(BUILD)/plugins/state/%.o: override CFLAGS += $(STATE_CFLAGS) -fvisibility=hidden

# The pure parts, for unit tests that need no server.
STATE_PURE_OBJS := $(BUILD)/plugins/state/client_key.o

$(BUILD)/tests/test_kv_options: tests/unit/test_kv_options.c $(BUILD)/plugins/state/kv_options.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/tests/test_client_key: tests/unit/test_client_key.c $(STATE_PURE_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka)

$(BUILD)/tests/test_kv_local: tests/unit/test_kv_local.c $(STATE_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(STATE_CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka) $(STATE_LIBS)

-include $(STATE_OBJS:.o=.d)
endif
