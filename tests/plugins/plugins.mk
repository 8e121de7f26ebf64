# Test plugins: built with every build, loaded by the integration tests from
# $(BUILD)/tests/plugins/.
TEST_PLUGIN_SRCS := $(filter-out tests/plugins/milter_%.c,$(wildcard tests/plugins/test_*.c))
TEST_PLUGINS := $(TEST_PLUGIN_SRCS:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)
EXTRA_TARGETS += $(TEST_PLUGINS)

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c plugins/smtpgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SO_LDFLAGS) $(LDFLAGS) -o $@ $< -lpthread

# test_evloop waits on the host's event loop: it links libevent itself, as a
# real plugin that uses host->event_loop must.
$(BUILD)/tests/plugins/test_evloop.so: tests/plugins/test_evloop.c plugins/smtpgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SO_LDFLAGS) $(LDFLAGS) -o $@ $< $(shell $(PKG_CONFIG) --libs libevent)
