# plugins/spf: the SPF plugin (RFC 7208 on libspf2's DNS layers), its unit
# tests, the RFC 7208 suite runner and the spf-query tool for DNS tests.

SPF_LIB_SRCS := plugins/spf/spf_result.c plugins/spf/spf_record.c plugins/spf/spf_macro.c plugins/spf/spf_explain.c \
                plugins/spf/spf_check.c plugins/spf/spf_dns.c plugins/spf/spf_dns_reply.c \
                plugins/spf/spf_policy.c plugins/spf/spf_header.c plugins/spf/spf_memo.c \
                plugins/spf/spf_async.c
SPF_LIB_OBJS := $(SPF_LIB_SRCS:%.c=$(BUILD)/%.o)
SPF_OBJS     := $(SPF_LIB_OBJS) $(BUILD)/plugins/spf/spf_plugin.o
# libspf2 has no pkg-config file; ns_initparse() and friends are libresolv's;
# the resolver is c-ares (Debian's libc-ares-dev), driven by libevent when a
# check waits on the connection's loop.
SPF_LIBS     := -lspf2 $(shell $(PKG_CONFIG) --libs libcares libevent 2>/dev/null) -lresolv -lpthread
SPF_CFLAGS   := $(shell $(PKG_CONFIG) --cflags libcares 2>/dev/null)
$(BUILD)/plugins/spf/%.o: override CFLAGS += $(SPF_CFLAGS)

SPF_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_spf_*.c))
SPF_SUITE_YML := /usr/share/doc/python3-spf/rfc7208-tests.yml.gz
SPF_SUITE_DAT := $(BUILD)/tests/spf-rfc7208.dat

EXTRA_TARGETS   += $(BUILD)/plugins/spf.so $(BUILD)/tests/spf-query
EXTRA_UNIT_BINS += $(SPF_TESTS) $(SPF_SUITE_DAT)
INSTALL_PLUGINS += $(BUILD)/plugins/spf.so

# Only the descriptor is exported (SG_PLUGIN_EXPORT): the plugin's objects
# are built with hidden visibility, and libsmtpgate-util.a's symbols are kept
# inside by --exclude-libs.
$(BUILD)/plugins/spf/%.o: override CFLAGS += -fvisibility=hidden

$(BUILD)/plugins/spf.so: $(SPF_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ $^ $(SPF_LIBS)

$(BUILD)/tests/spf-query: tests/spf/spf_query.c $(SPF_LIB_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SPF_CFLAGS) $(LDFLAGS) -o $@ $^ $(SPF_LIBS)

$(BUILD)/tests/test_spf_rfc7208: override CFLAGS += -DSPF_SUITE_DATA='"$(abspath $(SPF_SUITE_DAT))"'
$(BUILD)/tests/test_spf_rfc7208: | $(SPF_SUITE_DAT)

$(BUILD)/tests/test_spf_%: tests/unit/test_spf_%.c $(SPF_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SPF_CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka) $(SPF_LIBS)

$(SPF_SUITE_DAT): tests/spf/rfc7208_to_data.py $(SPF_SUITE_YML)
	@mkdir -p $(dir $@)
	/usr/bin/python3 tests/spf/rfc7208_to_data.py $(SPF_SUITE_YML) $@

-include $(SPF_OBJS:.o=.d)
