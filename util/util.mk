# util/: logging, metrics registry, addresses and CIDR ranges, checked
# allocation; depends on nothing else of the tree.  Besides going into the
# core library, the objects are archived alone as UTIL_LIB, which the rules
# library's users and the plugins link, so that they run exactly the
# daemon's code (a plugin links it with -Wl,--exclude-libs,ALL: its symbols
# stay inside the shared object).
UTIL_SRCS := $(wildcard util/*.c)
UTIL_OBJS := $(UTIL_SRCS:%.c=$(BUILD)/%.o)
UTIL_LIB  := $(BUILD)/libsmtpgate-util.a
CORE_SRCS += $(UTIL_SRCS)

$(UTIL_LIB): $(UTIL_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^
