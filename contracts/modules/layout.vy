# pragma version ~=0.4.3
"""
@title Strikeline shared layout
@custom:contract-name layout
@license GNU Affero General Public License v3.0 only
@notice The facts every Strikeline contract shares: units, bounds, the packed
        storage words and the money maths on them. Stateless: contracts
        `import` it. The Python mirror is `strikeline.units` and `strikeline.ids`.

        Words (bit ranges, low to high):
          position  long (0-127) | short (128-254) | margined (255)
          book      open interest (0-127) | locked collateral (128-255)
          terms     quote token (0-159) | expiry day (160-183) | strike (184-255)
          product   collateral token (0-159) | is_put (160) | enabled (161) |
                    collateral decimals (168-175)
"""

# @dev Option amounts, strikes and prices carry 8 decimals.
UNIT: constant(uint256) = 10**8
UNIT_SQ: constant(uint256) = 10**16
DAY: constant(uint256) = 86_400
EXPIRY_HOUR: constant(uint256) = 28_800
# @dev Bounds that keep every product in the payoff and margin maths far from
# overflow: strikes and prices below 10**20, one write or trade below 10**20
# option units, and an open short below 10**20 units too (the margin maths'
# domain), so no account can push itself out of reach of liquidation.
MAX_STRIKE: constant(uint256) = 10**20
MAX_AMOUNT: constant(uint256) = 10**20
MAX_DECIMALS: constant(uint256) = 36

MASK128: constant(uint256) = 2**128 - 1
MASK160: constant(uint256) = 2**160 - 1

# position word
LONG_MASK: constant(uint256) = 2**128 - 1
SHORT_SHIFT: constant(uint256) = 128
SHORT_MASK: constant(uint256) = 2**127 - 1
MARGIN_BIT: constant(uint256) = 2**255

# product word
PUT_BIT: constant(uint256) = 2**160
ENABLED_BIT: constant(uint256) = 2**161
DECIMALS_SHIFT: constant(uint256) = 168

# terms word: the expiry as a day number in 24 bits (until the year 47,900)
DAY_MASK: constant(uint256) = 2**24 - 1
MAX_EXPIRY: constant(uint256) = 2**24 * DAY
STRIKE_SHIFT: constant(uint256) = 184


@internal
@pure
def _expiry(terms: uint256) -> uint256:
    """
    @dev The expiry (08:00 UTC of the stored day) of a terms word.
    @param terms The series terms word.
    @return uint256 Unix seconds.
    """
    return ((terms >> 160) & DAY_MASK) * DAY + EXPIRY_HOUR


@internal
@pure
def _quote(terms: uint256) -> address:
    """
    @dev The premium (quote) token of a terms word.
    @param terms The series terms word.
    @return address The quote token.
    """
    return convert(convert(terms & MASK160, uint160), address)


@internal
@pure
def _low_address(word: uint256) -> address:
    """
    @dev The address in the low 160 bits of a word.
    @param word The word.
    @return address The address.
    """
    return convert(convert(word & MASK160, uint160), address)


@internal
@pure
def _unit(product: uint256) -> uint256:
    """
    @dev 10**decimals of a product's collateral token.
    @param product The product word.
    @return uint256 The token's unit.
    """
    return 10 ** ((product >> DECIMALS_SHIFT) & 255)


@internal
@pure
def _mul_div_up(a: uint256, b: uint256, d: uint256) -> uint256:
    """
    @dev ceil(a * b / d), checked arithmetic.
    @param a A factor.
    @param b A factor.
    @param d The divisor.
    @return uint256 The quotient rounded up.
    """
    product: uint256 = a * b
    return product // d + convert(product % d != 0, uint256)


@internal
@pure
def _full_collateral(is_put: bool, unit: uint256, strike: uint256, amount: uint256) -> uint256:
    """
    @dev Full collateral for a short of `amount` options, rounded up: a call
         locks one unit of the underlying per contract, a put strike x amount
         of the quote token. A short's collateral is always this function of
         its size, so opening and closing in pieces never drifts from it.
    @param is_put Whether the option is a put.
    @param unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param amount Option units.
    @return uint256 Collateral units.
    """
    if is_put:
        return self._mul_div_up(amount * strike, unit, UNIT_SQ)
    return self._mul_div_up(amount, unit, UNIT)


@internal
@pure
def _payoff(is_put: bool, unit: uint256, strike: uint256, price: uint256, amount: uint256, round_up: bool) -> uint256:
    """
    @dev Cash payoff of `amount` options at expiry price `price`, in collateral
         units: a call pays (S - K) / S of the underlying per contract, a put
         K - S of the quote token. Rounded up for writers, down for holders.
    @param is_put Whether the option is a put.
    @param unit 10**decimals of the collateral token.
    @param strike The strike, 8 decimals.
    @param price The expiry price, 8 decimals.
    @param amount Option units.
    @param round_up True for what writers owe, False for what holders get.
    @return uint256 Collateral units.
    """
    if is_put:
        if price >= strike:
            return 0
        if round_up:
            return self._mul_div_up(amount * (strike - price), unit, UNIT_SQ)
        return amount * (strike - price) * unit // UNIT_SQ
    if price <= strike:
        return 0
    if round_up:
        return self._mul_div_up(amount * unit, price - strike, price * UNIT)
    return amount * unit * (price - strike) // (price * UNIT)


@internal
@pure
def _product_id(underlying: address, quote: address, collateral: address, is_put: bool) -> bytes32:
    """
    @dev The deterministic id of a product.
    """
    return keccak256(abi_encode(underlying, quote, collateral, is_put))


@internal
@pure
def _series_id(product_id: bytes32, strike: uint256, expiry: uint256) -> uint256:
    """
    @dev The deterministic id of a series, also its ERC-1155 id.
    """
    return convert(keccak256(abi_encode(product_id, strike, expiry)), uint256)
