"""The transport-independent connection layer: envelope, fields, hub and channels, broker, fan-out, wire format."""
