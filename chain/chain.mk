# chain/: the filter chain.  Which file calls which (no cycle):
#   loader     -> host_api, plugin_conf, instance
#   host_api   -> chain, chain_conn, plugin_conf, reply, instance
#   chain      -> chain_conn, instance, reply, workpool
#   chain_conn -> instance
# msg_edit (applying a transaction's edits) is called by the front-ends.
CORE_SRCS += $(wildcard chain/*.c)
