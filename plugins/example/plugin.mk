# The example plugin, built like any plugin of the tree; tests/integration
# also builds it out of tree against the installed SDK.
EXTRA_TARGETS += $(BUILD)/plugins/example.so
INSTALL_PLUGINS += $(BUILD)/plugins/example.so

$(BUILD)/plugins/example.so: plugins/example/example.c plugins/smtpgate/plugin.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SO_LDFLAGS) $(LDFLAGS) -o $@ $<
