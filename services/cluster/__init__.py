"""Past one process: which process runs the engine (`lease`: a Redis lease with a fencing token, imported only with
`--redis-url`), and how a gateway reaches it (`link`: calls over the broker)."""
