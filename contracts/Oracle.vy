# pragma version ~=0.4.3
"""
@title Strikeline Oracle
@custom:contract-name Oracle
@license GNU Affero General Public License v3.0 only
@notice Spot and expiry prices (8 decimals) from EIP-712 reports signed by
        registered reporters (REPORTER_ROLE). Anyone may relay signed reports.

        Spot: at least `quorum` fresh reports from distinct reporters, signers in
        strictly ascending address order; the median becomes the spot price,
        moved at most `max_deviation_bps` from the previous fresh price in one
        update (a larger move is clamped and catches up over later updates).

        Expiry: reports for (asset, expiry) are accepted once
        `block.timestamp >= expiry + locking_period`; the median is stored and
        may be disputed once by a DISPUTER during `dispute_period` after it was
        reported; it becomes final when that window ends. The moment of
        finality is fixed when the price is reported (`final_at`), so a later
        change of `dispute_period` never re-opens a price already used.
        Settlement reads only final prices.

        EIP-712 domain: name "Strikeline Oracle", version "1", chainId, this
        contract. Types:
          SpotReport(address asset,uint256 price,uint256 timestamp)
          ExpiryReport(address asset,uint256 expiry,uint256 price)
@custom:kill Revoke every REPORTER_ROLE: no new prices can be set. Final expiry
        prices stay readable, so settlement of expired series is never blocked.
"""

from snekmate.auth import access_control
from snekmate.utils import ecdsa
from snekmate.utils import eip712_domain_separator as eip712

# @dev Roles: the admin (a timelock) manages reporters and parameters; the
# disputer may correct an expiry price during its dispute window.
initializes: access_control

# @dev We own the EIP-712 domain (name, version, chain id, this address).
initializes: eip712

exports: (
    access_control.DEFAULT_ADMIN_ROLE,
    access_control.hasRole,
    access_control.getRoleAdmin,
    access_control.grantRole,
    access_control.revokeRole,
    access_control.renounceRole,
    access_control.supportsInterface,
    eip712.eip712Domain,
)


event SpotUpdated:
    asset: indexed(address)
    price: uint256
    median: uint256
    timestamp: uint256
    reporters: uint256


event ExpiryPriceReported:
    asset: indexed(address)
    expiry: indexed(uint256)
    price: uint256
    reported_at: uint256


event ExpiryPriceDisputed:
    asset: indexed(address)
    expiry: indexed(uint256)
    old_price: uint256
    new_price: uint256
    disputer: address


event ParametersSet:
    quorum: uint256
    max_age: uint256
    max_deviation_bps: uint256
    locking_period: uint256
    dispute_period: uint256


REPORTER_ROLE: public(constant(bytes32)) = keccak256("REPORTER_ROLE")
DISPUTER_ROLE: public(constant(bytes32)) = keccak256("DISPUTER_ROLE")

SPOT_REPORT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "SpotReport(address asset,uint256 price,uint256 timestamp)"
)
EXPIRY_REPORT_TYPEHASH: public(constant(bytes32)) = keccak256(
    "ExpiryReport(address asset,uint256 expiry,uint256 price)"
)

MAX_REPORTS: constant(uint256) = 16
# @dev 10**12 quote units per underlying: far above any real price, far below what
# would overflow the Clearinghouse's payoff maths.
MAX_PRICE: public(constant(uint256)) = 10**20
BPS: constant(uint256) = 10_000


struct Report:
    price: uint256
    # report time for spot reports; ignored for expiry reports
    timestamp: uint256
    signature: Bytes[65]


struct Spot:
    price: uint256
    timestamp: uint256


struct ExpiryPrice:
    price: uint256
    reported_at: uint256
    disputed: bool


quorum: public(uint256)
max_age: public(uint256)
max_deviation_bps: public(uint256)
locking_period: public(uint256)
dispute_period: public(uint256)

spot: public(HashMap[address, Spot])
expiry_prices: public(HashMap[address, HashMap[uint256, ExpiryPrice]])
# @dev When each reported expiry price becomes final: its report time plus the
# dispute period in force then.
final_at: public(HashMap[address, HashMap[uint256, uint256]])


@deploy
def __init__(
    admin_: address,
    quorum_: uint256,
    max_age_: uint256,
    max_deviation_bps_: uint256,
    locking_period_: uint256,
    dispute_period_: uint256,
):
    """
    @dev Deploys the Oracle with its parameters; `admin_` gets the admin role.
    """
    assert admin_ != empty(address), "oracle: zero admin"
    access_control.__init__()
    eip712.__init__("Strikeline Oracle", "1")
    access_control._grant_role(access_control.DEFAULT_ADMIN_ROLE, admin_)
    if admin_ != msg.sender:
        access_control._revoke_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_parameters(quorum_, max_age_, max_deviation_bps_, locking_period_, dispute_period_)


@external
def set_parameters(
    quorum_: uint256, max_age_: uint256, max_deviation_bps_: uint256, locking_period_: uint256, dispute_period_: uint256
):
    """
    @dev Admin: sets quorum, spot freshness, deviation bound and the expiry
         locking and dispute periods.
    """
    access_control._check_role(access_control.DEFAULT_ADMIN_ROLE, msg.sender)
    self._set_parameters(quorum_, max_age_, max_deviation_bps_, locking_period_, dispute_period_)


@external
def report_spot(asset: address, reports: DynArray[Report, MAX_REPORTS]) -> uint256:
    """
    @dev Sets the spot price of `asset` from signed reports; anyone may relay.
    @return uint256 The new spot price.
    """
    previous: Spot = self.spot[asset]
    prices: DynArray[uint256, MAX_REPORTS] = []
    oldest: uint256 = max_value(uint256)
    last_signer: address = empty(address)
    assert len(reports) >= self.quorum, "oracle: below quorum"
    for report: Report in reports:
        assert report.price != 0, "oracle: zero price"
        assert report.price <= MAX_PRICE, "oracle: price too large"
        assert report.timestamp <= block.timestamp, "oracle: report from the future"
        assert block.timestamp - report.timestamp <= self.max_age, "oracle: stale report"
        assert report.timestamp > previous.timestamp, "oracle: report not newer"
        digest: bytes32 = eip712._hash_typed_data_v4(
            keccak256(abi_encode(SPOT_REPORT_TYPEHASH, asset, report.price, report.timestamp))
        )
        last_signer = self._check_signer(digest, report.signature, last_signer)
        prices.append(report.price)
        oldest = min(oldest, report.timestamp)

    median: uint256 = self._median(prices)
    price: uint256 = median
    if previous.price != 0 and block.timestamp - previous.timestamp <= self.max_age:
        band: uint256 = previous.price * self.max_deviation_bps // BPS
        price = max(min(median, previous.price + band), previous.price - band)
    self.spot[asset] = Spot(price=price, timestamp=oldest)
    log SpotUpdated(asset=asset, price=price, median=median, timestamp=oldest, reporters=len(reports))
    return price


@external
def report_expiry(asset: address, expiry: uint256, reports: DynArray[Report, MAX_REPORTS]) -> uint256:
    """
    @dev Sets the expiry price of (`asset`, `expiry`) from signed reports once
         the locking period after expiry has passed; anyone may relay. The
         price is then open to dispute for `dispute_period`.
    @return uint256 The expiry price (median of the reports).
    """
    assert expiry != 0, "oracle: zero expiry"
    assert block.timestamp >= expiry + self.locking_period, "oracle: locking period"
    assert self.expiry_prices[asset][expiry].reported_at == 0, "oracle: already reported"
    assert len(reports) >= self.quorum, "oracle: below quorum"
    prices: DynArray[uint256, MAX_REPORTS] = []
    last_signer: address = empty(address)
    for report: Report in reports:
        assert report.price != 0, "oracle: zero price"
        assert report.price <= MAX_PRICE, "oracle: price too large"
        digest: bytes32 = eip712._hash_typed_data_v4(
            keccak256(abi_encode(EXPIRY_REPORT_TYPEHASH, asset, expiry, report.price))
        )
        last_signer = self._check_signer(digest, report.signature, last_signer)
        prices.append(report.price)
    price: uint256 = self._median(prices)
    self.expiry_prices[asset][expiry] = ExpiryPrice(price=price, reported_at=block.timestamp, disputed=False)
    self.final_at[asset][expiry] = block.timestamp + self.dispute_period
    log ExpiryPriceReported(asset=asset, expiry=expiry, price=price, reported_at=block.timestamp)
    return price


@external
def dispute_expiry(asset: address, expiry: uint256, price: uint256):
    """
    @dev Disputer: replaces a reported expiry price during its dispute window,
         once. The window is not extended.
    """
    access_control._check_role(DISPUTER_ROLE, msg.sender)
    assert price != 0, "oracle: zero price"
    assert price <= MAX_PRICE, "oracle: price too large"
    current: ExpiryPrice = self.expiry_prices[asset][expiry]
    assert current.reported_at != 0, "oracle: not reported"
    assert block.timestamp < self.final_at[asset][expiry], "oracle: dispute window over"
    assert not current.disputed, "oracle: already disputed"
    self.expiry_prices[asset][expiry] = ExpiryPrice(price=price, reported_at=current.reported_at, disputed=True)
    log ExpiryPriceDisputed(asset=asset, expiry=expiry, old_price=current.price, new_price=price, disputer=msg.sender)


@external
@view
def spot_price(asset: address) -> uint256:
    """
    @dev The spot price of `asset`; reverts if none or older than `max_age`.
    """
    current: Spot = self.spot[asset]
    assert current.price != 0, "oracle: no price"
    assert block.timestamp - current.timestamp <= self.max_age, "oracle: stale price"
    return current.price


@external
@view
def expiry_price(asset: address, expiry: uint256) -> (uint256, bool):
    """
    @dev The expiry price of (`asset`, `expiry`) and whether it is final
         (reported and past the dispute window fixed when it was reported).
         (0, False) if not reported.
    """
    current: ExpiryPrice = self.expiry_prices[asset][expiry]
    if current.reported_at == 0:
        return 0, False
    return current.price, block.timestamp >= self.final_at[asset][expiry]


@external
@view
def spot_digest(asset: address, price: uint256, timestamp: uint256) -> bytes32:
    """
    @dev The EIP-712 digest a reporter signs for a spot report.
    """
    return eip712._hash_typed_data_v4(keccak256(abi_encode(SPOT_REPORT_TYPEHASH, asset, price, timestamp)))


@external
@view
def expiry_digest(asset: address, expiry: uint256, price: uint256) -> bytes32:
    """
    @dev The EIP-712 digest a reporter signs for an expiry report.
    """
    return eip712._hash_typed_data_v4(keccak256(abi_encode(EXPIRY_REPORT_TYPEHASH, asset, expiry, price)))


@internal
@view
def _check_signer(digest: bytes32, signature: Bytes[65], last_signer: address) -> address:
    """
    @dev Recovers a 65-byte low-s signature, requires a registered reporter
         strictly above `last_signer` (so every signer is distinct).
    """
    assert len(signature) == 65, "oracle: signature length"
    signer: address = ecdsa._recover_sig(digest, signature)
    assert convert(signer, uint256) > convert(last_signer, uint256), "oracle: signers not ascending"
    assert access_control.hasRole[REPORTER_ROLE][signer], "oracle: not a reporter"
    return signer


@internal
@pure
def _median(values: DynArray[uint256, MAX_REPORTS]) -> uint256:
    """
    @dev Median by insertion sort (at most 16 values); the mean of the two
         middle values, rounded down, for an even count.
    """
    sorted_values: DynArray[uint256, MAX_REPORTS] = values
    n: uint256 = len(sorted_values)
    for i: uint256 in range(1, MAX_REPORTS):
        if i >= n:
            break
        key: uint256 = sorted_values[i]
        j: uint256 = i
        for _k: uint256 in range(MAX_REPORTS):
            if j == 0 or sorted_values[j - 1] <= key:
                break
            sorted_values[j] = sorted_values[j - 1]
            j -= 1
        sorted_values[j] = key
    mid: uint256 = n // 2
    if n % 2 == 1:
        return sorted_values[mid]
    return (sorted_values[mid - 1] + sorted_values[mid]) // 2


@internal
def _set_parameters(
    quorum_: uint256, max_age_: uint256, max_deviation_bps_: uint256, locking_period_: uint256, dispute_period_: uint256
):
    assert quorum_ != 0 and quorum_ <= MAX_REPORTS, "oracle: bad quorum"
    assert max_age_ != 0, "oracle: zero max age"
    assert max_deviation_bps_ != 0 and max_deviation_bps_ < BPS, "oracle: bad deviation"
    self.quorum = quorum_
    self.max_age = max_age_
    self.max_deviation_bps = max_deviation_bps_
    self.locking_period = locking_period_
    self.dispute_period = dispute_period_
    log ParametersSet(
        quorum=quorum_,
        max_age=max_age_,
        max_deviation_bps=max_deviation_bps_,
        locking_period=locking_period_,
        dispute_period=dispute_period_,
    )
