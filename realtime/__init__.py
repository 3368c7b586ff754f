"""The transport-independent connection layer: envelope, message types, hub, pub/sub, limits."""
