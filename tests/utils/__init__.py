"""Helpers and deployers shared by the titanoboa tests (tests/unit, tests/stateful).

One place for what used to live in four styles (a `Tools` fixture, `helpers.py`, a ledger
`Market`, the stateful `World`):

- `contracts`: contract paths and the session's one compile cache (`deployer`, `DEPLOYERS`);
- `chain`: address prediction (`next_create`), time, funded accounts and signing keys;
- `system`: the ONE builder of the deployed v2 system (`System`) and its constants;
- `tools`: the `Tools` helpers (time, events, signed reports, solvency) and stub contracts;
- `orders`: the Ledger's signed orders and matches, and traders that sign them;
- `ledger`: a Ledger on its own with a stand-in Clearinghouse (`Market`);
- `margin`: margined shorts on the system (`Margin`) and the liquidation scenario;
- `profiles`: the hypothesis profiles, the only place example counts come from.

The conftest files are thin fixture wrappers around these. pytest puts `tests/` on sys.path
(rootdir conftest, "prepend" import mode), so tests import `from utils.system import ...`.
"""
