# plugins/dnsbl: the dnsbl plugin (weighted DNS lists on evdns), and its unit tests.

DNSBL_LIB_SRCS := plugins/dnsbl/dnsbl_site.c plugins/dnsbl/dnsbl_cache.c
DNSBL_LIB_OBJS := $(DNSBL_LIB_SRCS:%.c=$(BUILD)/%.o)
DNSBL_OBJS     := $(DNSBL_LIB_OBJS) $(BUILD)/plugins/dnsbl/dnsbl_plugin.o
DNSBL_LIBS     := $(shell $(PKG_CONFIG) --libs libevent) -lpthread

DNSBL_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_dnsbl_*.c))

EXTRA_TARGETS   += $(BUILD)/plugins/dnsbl.so
EXTRA_UNIT_BINS += $(DNSBL_TESTS)
INSTALL_PLUGINS += $(BUILD)/plugins/dnsbl.so

# Only the descriptor is exported (SG_PLUGIN_EXPORT).
$(BUILD)/plugins/dnsbl/%.o: override CFLAGS += -fvisibility=hidden

$(BUILD)/plugins/dnsbl.so: $(DNSBL_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ $^ $(DNSBL_LIBS)

$(BUILD)/tests/test_dnsbl_%: tests/unit/test_dnsbl_%.c $(DNSBL_LIB_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka) -lpthread

-include $(DNSBL_OBJS:.o=.d)
