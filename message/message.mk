# message/: the message as stored while in flight (spool, the plugins' view
# of it, quarantine).
CORE_SRCS += $(wildcard message/*.c)
