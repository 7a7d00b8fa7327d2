"""Strikeline keepers: the daemons that push oracle prices, settle expiries and liquidate.

Built so far: the oracle keeper's price pipeline (`keepers.sources`, `keepers.aggregate`,
`keepers.price_step`); see `docs/keepers.md`.
"""
