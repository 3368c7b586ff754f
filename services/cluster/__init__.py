"""Past one process: which process runs the engine (a Redis lease with a fencing token), and how the gateways
reach it. Imported only when the server is given `--redis-url`."""
