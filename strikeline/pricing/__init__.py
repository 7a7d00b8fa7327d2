"""Option analytics: Black-Scholes/Black-76 prices and greeks, implied volatility, SVI, Heston.

Everything here is floating-point analytics (not money arithmetic) and vectorised with numpy:
inputs broadcast like ufunc arguments. See ``docs/pricing.md`` for formulas, units and accuracy.
"""

from strikeline.pricing.black_scholes import (
    Greeks,
    black76_greeks,
    black76_price,
    bs_greeks,
    bs_price,
)
from strikeline.pricing.heston import HestonParams, heston_char_func, heston_price
from strikeline.pricing.implied_vol import black76_implied_vol, bs_implied_vol
from strikeline.pricing.svi import SVIFit, SVIParams, fit_svi

__all__ = [
    "Greeks",
    "HestonParams",
    "SVIFit",
    "SVIParams",
    "black76_greeks",
    "black76_implied_vol",
    "black76_price",
    "bs_greeks",
    "bs_implied_vol",
    "bs_price",
    "fit_svi",
    "heston_char_func",
    "heston_price",
]
