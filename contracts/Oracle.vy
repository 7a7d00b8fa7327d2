# pragma version ~=0.4.3
"""
@title Strikeline Oracle
@custom:contract-name Oracle
@license GNU Affero General Public License v3.0 only
@notice Spot and expiry prices (8 decimals) from EIP-712 reports signed by
        registered reporters (REPORTER_ROLE). Anyone may relay signed reports,
        one or many at a time.

        The relayer does not choose the median (issue 10): every reporter's
        latest report is kept on chain in its own slot, and the aggregate is
        the median over the latest fresh report of every registered reporter,
        whichever transaction brought it. Leaving a report out of a batch
        leaves it out of nothing: a report already stored counts until it
        ages past `max_age`, and anyone may relay the missing one.

        Spot: a report newer than its reporter's stored one replaces it (an
        older one is skipped). When at least `quorum` reporters hold a fresh
        report, their median becomes the spot price, moved at most
        `max_deviation_bps` from the previous fresh price in one update (a
        larger move is clamped and catches up over later updates); its
        timestamp is the oldest report counted.

        Expiry: reports for (asset, expiry) are accepted once
        `block.timestamp >= expiry + locking_period`, one per reporter. When
        `quorum` are stored the price is set and its finality fixed
        (`final_at`: now plus the dispute period in force, so a later change
        of `dispute_period` never re-opens a price already used); until then
        later reporters' reports still join and the price is the median of
        all stored. A DISPUTER may replace it once before `final_at`.
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


event SpotReportAccepted:
    asset: indexed(address)
    reporter: indexed(address)
    price: uint256
    timestamp: uint256


event ExpiryReportAccepted:
    asset: indexed(address)
    expiry: indexed(uint256)
    reporter: indexed(address)
    price: uint256


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
# @dev An expiry record in one word, so settlement reads one slot: price (bits
# 0-126) | disputed (127) | reported at (128-191) | final at (192-255).
DISPUTED: constant(uint256) = 2**127
PRICE_MASK: constant(uint256) = 2**127 - 1
TIME_MASK: constant(uint256) = 2**64 - 1


struct Report:
    price: uint256
    # report time for spot reports; ignored for expiry reports
    timestamp: uint256
    signature: Bytes[65]


struct Spot:
    price: uint256
    timestamp: uint256


struct SpotUpdates:
    # block time of the last aggregate update, and how many there were
    updated_at: uint256
    count: uint256


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
# @dev Expiry records (see DISPUTED); zero until reported. A price becomes
# final at its report time plus the dispute period in force then.
_expiry: HashMap[address, HashMap[uint256, uint256]]
# @dev Each reporter's latest spot report per asset (asset => reporter).
latest_report: public(HashMap[address, HashMap[address, Spot]])
# @dev Reporters that had a report stored, at most MAX_REPORTS; the slot of
# one whose role was revoked is reused.
reporters: public(DynArray[address, MAX_REPORTS])
spot_updates: public(HashMap[address, SpotUpdates])
# @dev Stored expiry reports per (asset, expiry), one per reporter.
_expiry_reports: HashMap[address, HashMap[uint256, DynArray[uint256, MAX_REPORTS]]]
expiry_reported: public(HashMap[address, HashMap[uint256, HashMap[address, bool]]])


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
    @dev Stores signed spot reports of `asset` (any number, any signer
         order; anyone may relay): each replaces its reporter's stored report
         if newer, else is skipped. Then, if at least `quorum` reporters hold
         a fresh report, their median (clamped) becomes the spot price.
    @return uint256 The new spot price, 0 if fewer than `quorum` are fresh.
    """
    accepted: bool = False
    for report: Report in reports:
        self._check_price(report.price)
        assert report.timestamp <= block.timestamp, "oracle: report from the future"
        assert block.timestamp - report.timestamp <= self.max_age, "oracle: stale report"
        digest: bytes32 = eip712._hash_typed_data_v4(
            keccak256(abi_encode(SPOT_REPORT_TYPEHASH, asset, report.price, report.timestamp))
        )
        signer: address = self._reporter(digest, report.signature)
        if report.timestamp <= self.latest_report[asset][signer].timestamp:
            continue
        self._register(signer)
        self.latest_report[asset][signer] = Spot(price=report.price, timestamp=report.timestamp)
        accepted = True
        log SpotReportAccepted(asset=asset, reporter=signer, price=report.price, timestamp=report.timestamp)
    assert accepted, "oracle: report not newer"

    # @dev the median over every reporter's latest fresh report, not the batch's
    prices: DynArray[uint256, MAX_REPORTS] = []
    oldest: uint256 = max_value(uint256)
    for reporter: address in self.reporters:
        stored: Spot = self.latest_report[asset][reporter]
        if (
            stored.price != 0
            and block.timestamp - stored.timestamp <= self.max_age
            and access_control.hasRole[REPORTER_ROLE][reporter]
        ):
            prices.append(stored.price)
            oldest = min(oldest, stored.timestamp)
    if len(prices) < self.quorum:
        return 0
    previous: Spot = self.spot[asset]
    median: uint256 = self._median(prices)
    price: uint256 = median
    if previous.price != 0 and block.timestamp - previous.timestamp <= self.max_age:
        band: uint256 = previous.price * self.max_deviation_bps // BPS
        price = max(min(median, previous.price + band), previous.price - band)
    self.spot[asset] = Spot(price=price, timestamp=oldest)
    # @dev the MarginEngine counts updates to know whether it saw every price
    self.spot_updates[asset] = SpotUpdates(updated_at=block.timestamp, count=self.spot_updates[asset].count + 1)
    log SpotUpdated(asset=asset, price=price, median=median, timestamp=oldest, reporters=len(prices))
    return price


@external
def report_expiry(asset: address, expiry: uint256, reports: DynArray[Report, MAX_REPORTS]) -> uint256:
    """
    @dev Stores signed expiry reports of (`asset`, `expiry`) once the locking
         period after expiry has passed, one per reporter (a reporter's
         second is skipped); anyone may relay. When `quorum` are stored the
         price is set and its finality fixed; until it is final (or
         disputed) later reporters still join, and the price is the median
         of all stored reports.
    @return uint256 The expiry price, 0 while fewer than `quorum` are stored.
    """
    assert expiry != 0, "oracle: zero expiry"
    assert block.timestamp >= expiry + self.locking_period, "oracle: locking period"
    record: uint256 = self._expiry[asset][expiry]
    if record != 0:
        assert record & DISPUTED == 0, "oracle: price disputed"
        assert block.timestamp < record >> 192, "oracle: price final"
    prices: DynArray[uint256, MAX_REPORTS] = self._expiry_reports[asset][expiry]
    accepted: bool = False
    for report: Report in reports:
        self._check_price(report.price)
        digest: bytes32 = eip712._hash_typed_data_v4(
            keccak256(abi_encode(EXPIRY_REPORT_TYPEHASH, asset, expiry, report.price))
        )
        signer: address = self._reporter(digest, report.signature)
        if self.expiry_reported[asset][expiry][signer]:
            continue
        self.expiry_reported[asset][expiry][signer] = True
        prices.append(report.price)
        accepted = True
        log ExpiryReportAccepted(asset=asset, expiry=expiry, reporter=signer, price=report.price)
    assert accepted, "oracle: already reported"
    self._expiry_reports[asset][expiry] = prices
    if len(prices) < self.quorum:
        return 0
    price: uint256 = self._median(prices)
    if record == 0:
        # a dispute period too long for 64 bits never ends, as it would not
        final_at: uint256 = min(block.timestamp + self.dispute_period, TIME_MASK)
        record = (block.timestamp << 128) | (final_at << 192)
    # the times stay; the price is the median of every report stored
    record = (record & ~PRICE_MASK) | price
    self._expiry[asset][expiry] = record
    log ExpiryPriceReported(asset=asset, expiry=expiry, price=price, reported_at=(record >> 128) & TIME_MASK)
    return price


@external
def dispute_expiry(asset: address, expiry: uint256, price: uint256):
    """
    @dev Disputer: replaces a reported expiry price during its dispute window,
         once. The window is not extended.
    """
    access_control._check_role(DISPUTER_ROLE, msg.sender)
    self._check_price(price)
    record: uint256 = self._expiry[asset][expiry]
    assert record != 0, "oracle: not reported"
    assert block.timestamp < record >> 192, "oracle: dispute window over"
    assert record & DISPUTED == 0, "oracle: already disputed"
    self._expiry[asset][expiry] = (record & ~PRICE_MASK) | DISPUTED | price
    log ExpiryPriceDisputed(
        asset=asset, expiry=expiry, old_price=record & PRICE_MASK, new_price=price, disputer=msg.sender
    )


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
    record: uint256 = self._expiry[asset][expiry]
    if record == 0:
        return 0, False
    return record & PRICE_MASK, block.timestamp >= record >> 192


@external
@view
def expiry_prices(asset: address, expiry: uint256) -> ExpiryPrice:
    """
    @dev The expiry record of (`asset`, `expiry`): (price, reported_at,
         disputed); all zero if not reported.
    """
    record: uint256 = self._expiry[asset][expiry]
    return ExpiryPrice(
        price=record & PRICE_MASK, reported_at=(record >> 128) & TIME_MASK, disputed=record & DISPUTED != 0
    )


@external
@view
def final_at(asset: address, expiry: uint256) -> uint256:
    """
    @dev When the expiry price of (`asset`, `expiry`) becomes final: its
         report time plus the dispute period in force then; 0 if not reported.
    """
    return self._expiry[asset][expiry] >> 192


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


@external
@view
def reporter_count() -> uint256:
    """
    @dev How many reporters are listed (`reporters(i)`, i below this).
    """
    return len(self.reporters)


@external
@view
def expiry_report_count(asset: address, expiry: uint256) -> uint256:
    """
    @dev How many expiry reports of (`asset`, `expiry`) are stored.
    """
    return len(self._expiry_reports[asset][expiry])


@internal
@pure
def _check_price(price: uint256):
    assert price != 0, "oracle: zero price"
    assert price <= MAX_PRICE, "oracle: price too large"


@internal
@view
def _reporter(digest: bytes32, signature: Bytes[65]) -> address:
    """
    @dev Recovers a 65-byte low-s signature and requires a registered
         reporter.
    """
    assert len(signature) == 65, "oracle: signature length"
    signer: address = ecdsa._recover_sig(digest, signature)
    assert access_control.hasRole[REPORTER_ROLE][signer], "oracle: not a reporter"
    return signer


@internal
def _register(reporter: address):
    """
    @dev Lists `reporter` for the spot median: appended, or in the slot of a
         listed reporter whose role was revoked.
    """
    if reporter in self.reporters:
        return
    if len(self.reporters) < MAX_REPORTS:
        self.reporters.append(reporter)
        return
    for i: uint256 in range(MAX_REPORTS):
        if not access_control.hasRole[REPORTER_ROLE][self.reporters[i]]:
            self.reporters[i] = reporter
            return
    raise "oracle: too many reporters"


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
