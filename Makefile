# smtpgate — GNU Make build.
#
#   make            build the daemon into build/release/
#   make run        install missing Debian packages, build, start in front of a local upstream
#   make test       install missing Debian packages, build (ASan+UBSan), run every test
#   make bench      benchmarks (proxied vs direct, same run)
#   make fuzz       short bounded libFuzzer run over every parser harness
#   make install    PREFIX=/usr/local DESTDIR=
#   make format     clang-format every C file in place

CC       ?= gcc
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?= 0
BUILD    ?= build/release

PKGS := libevent libevent_pthreads libconfuse openssl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -fPIC -I. -Iplugins $(PKG_CFLAGS) \
           -DSMTPGATE_PLUGIN_DIR='"$(PREFIX)/lib/smtpgate/plugins"' -DSMTPGATE_BUILD_DIR='"$(BUILD)"'
LDLIBS  += $(PKG_LIBS) -lpthread -ldl
# Plugins are dlopen'ed shared objects: position-independent, and they call the
# host only through the struct sg_host it hands them (no symbols exported).
SO_LDFLAGS := -shared

ifeq ($(SANITIZE),1)
CFLAGS  += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif

# The core is layered, lowest first; each layer's folder has a fragment that
# adds its sources to CORE_SRCS.  A file may include headers of its own layer
# and of layers listed before it, never after (scripts/check-layers.sh, run by
# `make test`, enforces it).  Everything but the entry points goes into one
# static library, so unit tests, fuzz harnesses and both front-ends (daemon/,
# milter/) link exactly the code the daemon runs.
LAYERS    := util codec message config chain daemon
CORE_SRCS :=
CORE_LIB  := $(BUILD)/libsmtpgate-core.a
include $(foreach l,$(LAYERS),$(l)/$(l).mk)
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

# Components outside the core layers (milter/, rules/, plugins/NAME/) bring their own fragment:
# each adds its targets to EXTRA_TARGETS (built by `make`), its unit tests to
# EXTRA_UNIT_BINS and its installed files to the install-extra rule's list.
EXTRA_TARGETS :=
EXTRA_UNIT_BINS :=
INSTALL_PLUGINS :=
INSTALL_BINS :=
.DEFAULT_GOAL := all
FRAGMENTS := $(sort $(wildcard milter/*.mk rules/*.mk plugins/*/*.mk tests/plugins/*.mk))
include $(FRAGMENTS)

.PHONY: all run test unit integration bench fuzz install install-sdk format clean deps-run deps-test

all: $(BUILD)/smtpgate $(EXTRA_TARGETS)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

$(CORE_LIB): $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^


$(BUILD)/tests/%: tests/unit/%.c $(CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(shell pkg-config --cflags cmocka) $(LDFLAGS) -o $@ $< $(CORE_LIB) \
		$(shell pkg-config --libs cmocka) $(LDLIBS)

unit-bins: $(UNIT_BINS) $(EXTRA_UNIT_BINS)

deps-run:
	scripts/deps.sh run

deps-test:
	scripts/deps.sh test

run: deps-run
	$(MAKE) all
	scripts/run-local.sh

# The test build is the sanitizer build: unit and integration tests run against it.
test: deps-test
	$(MAKE) BUILD=build/asan SANITIZE=1 all unit-bins
	$(MAKE) all
	scripts/test-all.sh

bench: deps-test
	$(MAKE) all
	tests/bench/run.sh $(if $(BENCH_BASELINE),--baseline $(BENCH_BASELINE))

fuzz: deps-test
	tests/fuzz/run.sh

install: all install-sdk
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/doc/smtpgate $(DESTDIR)$(PREFIX)/etc/smtpgate \
		$(DESTDIR)$(PREFIX)/lib/smtpgate/plugins
	install -m 0755 $(BUILD)/smtpgate $(DESTDIR)$(PREFIX)/sbin/smtpgate
	$(if $(INSTALL_BINS),install -m 0755 $(INSTALL_BINS) $(DESTDIR)$(PREFIX)/sbin/)
	$(if $(INSTALL_PLUGINS),install -m 0755 $(INSTALL_PLUGINS) $(DESTDIR)$(PREFIX)/lib/smtpgate/plugins/)
	sed 's|/usr/local/|$(PREFIX)/|g' etc/smtpgate.conf > $(DESTDIR)$(PREFIX)/etc/smtpgate/smtpgate.conf.example
	install -m 0644 README.md plugins/README.md etc/smtpgate.service etc/postfix/main.cf.snippet \
		etc/postfix/master.cf.snippet $(DESTDIR)$(PREFIX)/share/doc/smtpgate/

# The plugin SDK alone: the header and its pkg-config file (smtpgate-plugin).
ABI_VERSION := $(shell sed -n 's/^\#define SG_PLUGIN_ABI_VERSION \([0-9]*\)/\1/p' plugins/smtpgate/plugin.h)
install-sdk:
	install -d $(DESTDIR)$(PREFIX)/include/smtpgate $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 0644 plugins/smtpgate/plugin.h $(DESTDIR)$(PREFIX)/include/smtpgate/plugin.h
	sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@ABI@|$(ABI_VERSION)|g' plugins/smtpgate-plugin.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/smtpgate-plugin.pc

format:
	clang-format -i $(foreach d,$(LAYERS) milter rules,$(wildcard $(d)/*.c $(d)/*.h)) \
		plugins/*/*.c plugins/*/*.h tests/unit/*.c tests/fuzz/*.c tests/plugins/*.c tests/spf/*.c

clean:
	rm -rf build

-include $(CORE_OBJS:.o=.d)
