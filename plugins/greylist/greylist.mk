# plugins/greylist: the greylisting plugin (greylist.so) on the state layer.
include plugins/state/state.mk

GREYLIST_OBJS := $(BUILD)/plugins/greylist/greylist.o
$(BUILD)/plugins/greylist/%.o: override CFLAGS += $(STATE_CFLAGS) -fvisibility=hidden

EXTRA_TARGETS   += $(BUILD)/plugins/greylist.so
INSTALL_PLUGINS += $(BUILD)/plugins/greylist.so

$(BUILD)/plugins/greylist.so: $(GREYLIST_OBJS) $(STATE_OBJS) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,--exclude-libs,ALL -o $@ $^ $(STATE_LIBS) -lm

-include $(GREYLIST_OBJS:.o=.d)
