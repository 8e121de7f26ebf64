# rules/: the rule language library (librules.a, position-independent so the
# rules plugin can link it), the smtpgate-rules command and its unit tests.
# Whatever links librules links UTIL_LIB (util/util.mk) after it.
RULES_PKGS   := libpcre2-8 gmime-3.0 libcares
RULES_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(RULES_PKGS) 2>/dev/null)
RULES_LIBS   := $(shell $(PKG_CONFIG) --libs $(RULES_PKGS) 2>/dev/null) -lm
RULES_SRCS   := $(filter-out rules/smtpgate-rules.c,$(wildcard rules/*.c))
RULES_OBJS   := $(RULES_SRCS:%.c=$(BUILD)/%.o)
RULES_LIB    := $(BUILD)/librules.a
RULES_UNIT   := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_rules_*.c))

$(BUILD)/rules/%.o: override CFLAGS += $(RULES_CFLAGS)

$(RULES_LIB): $(RULES_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/smtpgate-rules: $(BUILD)/rules/smtpgate-rules.o $(RULES_LIB) $(UTIL_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(RULES_LIBS)

$(BUILD)/tests/test_rules_%: tests/unit/test_rules_%.c $(RULES_LIB) $(UTIL_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(RULES_CFLAGS) $(shell $(PKG_CONFIG) --cflags cmocka) $(LDFLAGS) \
		-o $@ $< $(RULES_LIB) $(UTIL_LIB) $(shell $(PKG_CONFIG) --libs cmocka) $(RULES_LIBS)

EXTRA_TARGETS   += $(RULES_LIB) $(BUILD)/smtpgate-rules
EXTRA_UNIT_BINS += $(RULES_UNIT)
INSTALL_USER_BINS += $(BUILD)/smtpgate-rules

-include $(RULES_OBJS:.o=.d) $(BUILD)/rules/smtpgate-rules.d

# The shipped rule set (the admin's once installed: an edited one is kept)
# and this folder's documentation; the binary itself is in INSTALL_USER_BINS
# for the main install rule.
.PHONY: install-rules
install: install-rules
install-rules: all
	install -d $(DESTDIR)$(CONFDIR) $(DESTDIR)$(DOCDIR)
	$(call INSTALL_CONF,rules/default.rules,$(DESTDIR)$(CONFDIR)/default.rules)
	install -m 0644 rules/README.md $(DESTDIR)$(DOCDIR)/rules.md
