# chain/: the filter chain: plugin loading (the ABI host side), verdicts,
# message edits and the worker pool blocking plugins run in.
CORE_SRCS += $(wildcard chain/*.c)
