# util/: logging, metrics registry, addresses and CIDR ranges, checked
# allocation; depends on nothing else of the tree.
CORE_SRCS += $(wildcard util/*.c)
