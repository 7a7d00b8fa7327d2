"""Stateful tests: random sequences against the contracts beside a plain Python model."""
