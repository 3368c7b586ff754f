"""Adapters around the pure domain: configuration, storage, auth tokens."""
