"""Thin Tornado handlers: one module per endpoint over the shared connection layer in base.py."""
