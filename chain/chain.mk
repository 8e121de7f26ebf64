# chain/: the filter chain.  Which file calls which (no cycle):
#   loader     -> host_api, plugin_conf, instance
#   host_api   -> chain, chain_conn, plugin_conf, reply, instance
#   chain      -> chain_conn, instance, reply, workpool
#   chain_conn -> lifetime, instance
#   lifetime   -> instance
#   symbols    (a leaf: one set of symbols; conn_impl.h holds two)
#   symbol_metrics -> chain (the public symbol accessors only)
# chain_types.h holds the values front-ends and the chain exchange, so that
# the private headers (conn_impl.h, instance.h) need not include chain.h.
# msg_edit (applying a transaction's edits) is called by the front-ends.
CORE_SRCS += $(wildcard chain/*.c)
