# plugins/ratelimit: the rate limit plugin (ratelimit.so) on the state
# layer, and its rule parser's unit test.
include plugins/state/state.mk

RATELIMIT_OBJS := $(BUILD)/plugins/ratelimit/rate_rule.o $(BUILD)/plugins/ratelimit/ratelimit.o
$(BUILD)/plugins/ratelimit/%.o: override CFLAGS += $(STATE_CFLAGS) -fvisibility=hidden

EXTRA_TARGETS   += $(BUILD)/plugins/ratelimit.so
EXTRA_UNIT_BINS += $(BUILD)/tests/test_rate_rule $(BUILD)/tests/test_client_key \
                   $(BUILD)/tests/test_kv_local $(BUILD)/tests/test_kv_options
INSTALL_PLUGINS += $(BUILD)/plugins/ratelimit.so

$(BUILD)/plugins/ratelimit.so: $(RATELIMIT_OBJS) $(STATE_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ $^ $(STATE_LIBS)

$(BUILD)/tests/test_rate_rule: tests/unit/test_rate_rule.c $(BUILD)/plugins/ratelimit/rate_rule.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka)

-include $(RATELIMIT_OBJS:.o=.d)
