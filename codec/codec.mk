# codec/: pure parsers and formatters of the wire (SMTP commands and replies,
# ESMTP parameters, the DATA stream, headers, PROXY protocol, AUTH, milter
# words); functions over bytes, each with a fuzz harness.
CORE_SRCS += $(wildcard codec/*.c)
