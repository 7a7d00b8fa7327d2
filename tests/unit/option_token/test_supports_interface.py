"""OptionToken.supportsInterface: ERC-165, ERC-1155 and its metadata extension."""

import pytest


@pytest.mark.parametrize(
    "interface_id",
    [
        bytes.fromhex("01ffc9a7"),  # ERC-165
        bytes.fromhex("d9b67a26"),  # ERC-1155
        bytes.fromhex("0e89341c"),  # ERC-1155 metadata URI
    ],
)
def test_supported(system, interface_id):
    assert system.token.supportsInterface(interface_id) is True


@pytest.mark.parametrize(
    "interface_id",
    [
        bytes.fromhex("ffffffff"),  # must be false by ERC-165
        bytes.fromhex("80ac58cd"),  # ERC-721
        bytes.fromhex("36372b07"),  # ERC-20
        bytes.fromhex("4e2312e0"),  # ERC-1155 receiver: the token is not one
    ],
)
def test_unsupported(system, interface_id):
    assert system.token.supportsInterface(interface_id) is False
