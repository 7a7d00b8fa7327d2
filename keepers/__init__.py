"""Strikeline keepers: the daemons that push oracle prices, settle expiries and liquidate.

Built so far: the oracle keeper's price pipeline (`keepers.sources`, `keepers.aggregate`,
`keepers.pipeline`); see `docs/keepers.md`.
"""
