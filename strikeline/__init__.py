"""Strikeline: the Python SDK shared by the relayer, keepers, scripts and tests."""

__version__ = "0.1.0"
