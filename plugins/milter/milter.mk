# plugins/milter: the milter client plugin (milter.so), which calls external
# milters on the session's event loop.  It links the milter codec from codec/
# (the same objects the unit tests and fuzz harnesses test) and libevent.
MILTERC_SRCS := plugins/milter/milter_plugin.c plugins/milter/milter_session.c \
                plugins/milter/milter_addr.c plugins/milter/milter_macros.c \
                plugins/milter/milter_seen.c
MILTERC_OBJS := $(MILTERC_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/plugins/milter/codec_milter_wire.o
MILTERC_SO   := $(BUILD)/plugins/milter.so

$(BUILD)/plugins/milter/%.o: override CFLAGS += -fvisibility=hidden

# The codec's own source, compiled into the plugin with hidden visibility: only
# the descriptor leaves the shared object, so nothing of it can meet the host's
# copy of the same functions.
$(BUILD)/plugins/milter/codec_milter_wire.o: codec/milter_wire.c | $(BUILD_INFO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# Never unloaded (-z nodelete): a session's teardown handed to its loop with
# event_base_once() may still be queued when the last instance's fini runs.
$(MILTERC_SO): $(MILTERC_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,-z,nodelete -o $@ $^ $(shell $(PKG_CONFIG) --libs libevent) -lpthread

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
