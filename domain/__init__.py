"""Pure, synchronous domain engines: no tornado, no sockets, injected clock and randomness."""
