# plugins/rules: the rules filter plugin, a shared object linking librules.a
# (rules/rules.mk) and libsmtpgate-util.a.  Only the descriptor is exported;
# the libraries' symbols stay inside, and the object is never unloaded
# (-z nodelete) because GMime, which it pulls in, registers GObject types
# that must outlive a dlclose.
RULES_PLUGIN := $(BUILD)/plugins/rules.so

$(BUILD)/plugins/rules/%.o: override CFLAGS += -fvisibility=hidden

$(RULES_PLUGIN): $(BUILD)/plugins/rules/rules_plugin.o $(BUILD)/librules.a $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(SO_LDFLAGS) -Wl,--exclude-libs,ALL -Wl,-z,nodelete -o $@ $^ $(RULES_LIBS)

EXTRA_TARGETS   += $(RULES_PLUGIN)
INSTALL_PLUGINS += $(RULES_PLUGIN)

-include $(BUILD)/plugins/rules/rules_plugin.d

# Its unit test drives the built object through dlopen.
$(BUILD)/tests/test_rules_plugin: $(RULES_PLUGIN)
