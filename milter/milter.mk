# smtpgate-milter: the filter chain as a libmilter milter (milter/), and the
# test plugins its integration tests configure (tests/plugins/milter_*.c).
#
# It is a second front-end beside daemon/: it links the same core library and
# adds only libmilter's callbacks.  The pure helpers it shares with tests
# (milter_reply, milter_socket, milter_text) are codecs, in codec/.

MILTER_SRCS := $(wildcard milter/*.c)
MILTER_OBJS := $(MILTER_SRCS:%.c=$(BUILD)/%.o)
MILTER_BIN  := $(BUILD)/smtpgate-milter

MILTER_TEST_PLUGIN_SRCS := $(wildcard tests/plugins/milter_*.c)
MILTER_TEST_PLUGINS := $(MILTER_TEST_PLUGIN_SRCS:tests/plugins/%.c=$(BUILD)/tests/plugins/%.so)

$(MILTER_BIN): $(MILTER_OBJS) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ -lmilter $(LDLIBS)

# A static pattern rule: it takes precedence over tests/plugins/plugins.mk's
# implicit one, so these link from objects with dependency files.
$(MILTER_TEST_PLUGINS): $(BUILD)/tests/plugins/%.so: $(BUILD)/tests/plugins/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -o $@ $^ -lpthread

EXTRA_TARGETS += $(MILTER_BIN) $(MILTER_TEST_PLUGINS)
INSTALL_BINS += $(MILTER_BIN)

-include $(MILTER_OBJS:.o=.d) $(MILTER_TEST_PLUGIN_SRCS:%.c=$(BUILD)/%.d)
