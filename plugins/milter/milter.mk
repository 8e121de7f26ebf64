# plugins/milter: the milter client plugin (milter.so), which calls external
# milters on the session's event loop.  It links the milter codec from codec/
# (the same objects the unit tests and fuzz harnesses test) and libevent.
MILTERC_SRCS := plugins/milter/milter_plugin.c plugins/milter/milter_session.c \
                plugins/milter/milter_addr.c plugins/milter/milter_macros.c \
                plugins/milter/milter_seen.c
MILTERC_OBJS := $(MILTERC_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/codec/milter_wire.o
MILTERC_SO   := $(BUILD)/plugins/milter.so

$(BUILD)/plugins/milter/%.o: override CFLAGS += -fvisibility=hidden

$(MILTERC_SO): $(MILTERC_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -o $@ $^ $(shell $(PKG_CONFIG) --libs libevent) -lpthread

# Its pure parts' unit test.
$(BUILD)/tests/test_milter_client: tests/unit/test_milter_client.c $(BUILD)/plugins/milter/milter_addr.o \
		$(BUILD)/plugins/milter/milter_macros.o $(BUILD)/plugins/milter/milter_seen.o
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) -o $@ $^ \
		$(shell $(PKG_CONFIG) --libs cmocka) -lpthread

EXTRA_TARGETS   += $(MILTERC_SO)
EXTRA_UNIT_BINS += $(BUILD)/tests/test_milter_client
INSTALL_PLUGINS += $(MILTERC_SO)

-include $(MILTERC_SRCS:%.c=$(BUILD)/%.d)
