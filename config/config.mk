# config/: settings only: the configuration file, listeners and command line;
# it knows plugins as named sections, nothing more.
CORE_SRCS += $(wildcard config/*.c)
