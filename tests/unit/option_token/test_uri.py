"""OptionToken.uri: the base URI followed by the series id in decimal."""

from strikeline import units


def test_uri_is_base_plus_id(system):
    sid = system.series(system.call_product, 3_000 * units.UNIT)
    assert system.token.uri(sid) == f"https://strikeline.example/series/{sid}"
