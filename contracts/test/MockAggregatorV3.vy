# pragma version ~=0.4.3
"""
@title MockAggregatorV3
@custom:contract-name MockAggregatorV3
@notice A Chainlink `AggregatorV3Interface` price feed whose rounds are set by
        hand, so keepers can be tested against a real contract on anvil: any
        answer (zero and negative too), any round ids and times, including the
        incomplete and stale rounds a real feed can return. For tests, the
        demo and devnets only.
@custom:kill Not for production: anyone may set the answer.
"""


event AnswerUpdated:
    current: indexed(int256)
    roundId: indexed(uint256)
    updatedAt: uint256


struct Round:
    answer: int256
    startedAt: uint256
    updatedAt: uint256
    answeredInRound: uint80


decimals: public(uint8)
description: public(String[64])
version: public(uint256)
latestRound: public(uint80)
rounds: HashMap[uint80, Round]


@deploy
def __init__(decimals_: uint8, description_: String[64]):
    """
    @dev A feed with `decimals_` decimals and no round yet.
    """
    self.decimals = decimals_
    self.description = description_
    self.version = 4


@external
def set_answer(answer: int256, updated_at: uint256) -> uint80:
    """
    @dev Opens the next round with `answer`, started and answered at
         `updated_at`, in that same round (a complete, fresh round).
    @return uint80 The new round id.
    """
    round_id: uint80 = self.latestRound + 1
    self._set_round(round_id, answer, updated_at, updated_at, round_id)
    return round_id


@external
def set_round(
    round_id: uint80, answer: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80
):
    """
    @dev Sets round `round_id` to exactly these fields and makes it the latest
         round, whatever they are: a zero `updated_at` is an incomplete round,
         `answered_in_round < round_id` a round carried over from an older one.
    """
    self._set_round(round_id, answer, started_at, updated_at, answered_in_round)


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev The latest round: (roundId, answer, startedAt, updatedAt, answeredInRound).
         Like a real feed with no data, reverts before the first round.
    """
    assert self.latestRound != 0, "aggregator: no data present"
    current: Round = self.rounds[self.latestRound]
    return self.latestRound, current.answer, current.startedAt, current.updatedAt, current.answeredInRound


@external
@view
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @dev Round `round_id`: (roundId, answer, startedAt, updatedAt, answeredInRound).
         Reverts for a round never set, as real feeds do.
    """
    current: Round = self.rounds[round_id]
    assert current.updatedAt != 0 or current.answeredInRound != 0, "aggregator: no data present"
    return round_id, current.answer, current.startedAt, current.updatedAt, current.answeredInRound


@internal
def _set_round(
    round_id: uint80, answer: int256, started_at: uint256, updated_at: uint256, answered_in_round: uint80
):
    """
    @dev Stores the round, makes it the latest and logs it as Chainlink does.
    """
    assert round_id != 0, "aggregator: zero round"
    self.rounds[round_id] = Round(
        answer=answer, startedAt=started_at, updatedAt=updated_at, answeredInRound=answered_in_round
    )
    self.latestRound = round_id
    log AnswerUpdated(current=answer, roundId=convert(round_id, uint256), updatedAt=updated_at)
