"""Strikeline keepers: the daemons that push oracle prices, settle expiries and liquidate.

`python -m keepers ROLE [--once]` (`keepers.__main__`); settings in `keepers.settings`; the
oracle reporter and the reporters' board (`keepers.reporter`, `keepers.board`) on top of the
price pipeline (`keepers.sources`, `keepers.aggregate`, `keepers.price_step`); the
settlement and liquidation keepers (`keepers.settlement`, `keepers.liquidation`); see
`docs/keepers.md`.
"""
