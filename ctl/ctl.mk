# smtpgate-ctl: the control socket's client (ctl/), an admin's command beside
# the daemon.  It links the core library for the configuration's parser (to
# find control_socket), the request parser the daemon itself uses, and the
# JSON reader.

CTL_SRCS := $(wildcard ctl/*.c)
CTL_OBJS := $(CTL_SRCS:%.c=$(BUILD)/%.o)
CTL_BIN  := $(BUILD)/smtpgate-ctl

$(CTL_BIN): $(CTL_OBJS) $(CORE_LIB)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lm

EXTRA_TARGETS += $(CTL_BIN)
INSTALL_BINS += $(CTL_BIN)

-include $(CTL_OBJS:.o=.d)
