"""get_signal_recommendation: shrinkage, calibration, transfer between systems, sizing bounds."""
import dataclasses
import random
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from learning.services import get_signal_recommendation, store_trade_outcomes
from learning.services.recommendation import calibrate_confidence
from tests.factories import SignalContextFactory, TradeOutcomeFactory

pytestmark = pytest.mark.django_db


def record(n: int, *, wins: int, system: str = "paper_trading", confidence: float = 0.62, **extra):
    outcomes = []
    for index in range(n):
        move = Decimal("0.02") if index < wins else Decimal("-0.01")
        outcomes.append(
            TradeOutcomeFactory(
                strategy_type="trend_following",
                system_type=system,
                confidence_score=confidence,
                market_regime="trending_up",
                volatility_regime="medium",
                side="long",
                move_pct=move,
                **extra,
            )
        )
    store_trade_outcomes(outcomes=outcomes)


def test_without_history_the_prior_decides_and_says_so():
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.6))
    assert advice.sample_size == 0
    assert advice.calibrated_confidence == pytest.approx(0.6)
    assert advice.expected_win_rate == pytest.approx(0.6)
    assert advice.expected_pnl_pct == pytest.approx(0.6 * 0.02 - 0.4 * 0.01)
    assert advice.should_take_trade
    assert "rests on 0 paper_trading trades" in advice.reasoning


def test_thin_history_does_not_swing_the_decision():
    record(2, wins=0)
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62))
    assert advice.sample_size == 2
    assert 0.5 < advice.expected_win_rate < 0.62
    assert advice.should_take_trade


def test_a_long_losing_record_turns_the_advice_to_skip():
    record(200, wins=40)
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62))
    assert advice.expected_win_rate < 0.3
    assert not advice.should_take_trade
    assert advice.recommended_position_size == 0.0
    assert "rests on 200 paper_trading trades" in advice.reasoning


def test_a_trusted_model_probability_is_the_win_rate_and_the_learned_payoff_prices_it():
    record(200, wins=40)  # the statistics say skip: a 20 % win rate at +2 % / -1 %
    statistics = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62))
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62, ml_score=0.55))
    assert advice.expected_win_rate == 0.55 and statistics.expected_win_rate < 0.3
    assert advice.should_take_trade and not statistics.should_take_trade
    assert "is the model's (the learned statistics say" in advice.reasoning
    pessimistic = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62, ml_score=0.2))
    assert not pessimistic.should_take_trade and pessimistic.recommended_position_size == 0.0
    # The payoff is the learned one, whoever says the win rate: p * avg win - (1 - p) * avg loss
    # with the same averages for the model's two probabilities and for the statistics' own rate.
    avg_win_plus_loss = (advice.expected_pnl_pct - pessimistic.expected_pnl_pct) / (0.55 - 0.2)
    avg_loss = avg_win_plus_loss * 0.2 - pessimistic.expected_pnl_pct
    assert 0 < avg_loss < avg_win_plus_loss
    q = statistics.expected_win_rate
    assert statistics.expected_pnl_pct == pytest.approx(q * avg_win_plus_loss - avg_loss)


def test_size_stays_inside_the_configured_bounds(settings):
    record(300, wins=280)
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.62))
    assert advice.should_take_trade
    assert settings.LEARNING_MIN_POSITION_SIZE <= advice.recommended_position_size <= settings.LEARNING_MAX_POSITION_SIZE


def test_the_other_systems_history_counts_most_where_our_own_is_thin(settings):
    settings.LEARNING_TRANSFER_WEIGHT = 0.5
    context = SignalContextFactory(system_type="profit_scraping", confidence_score=0.62)
    before = get_signal_recommendation(context=context)
    record(200, wins=30, system="paper_trading")
    after_paper = get_signal_recommendation(context=context)
    assert after_paper.expected_win_rate < before.expected_win_rate - 0.1
    assert after_paper.transfer_sample_size == pytest.approx(0.5 * 200)

    record(400, wins=300, system="profit_scraping")
    with_own = get_signal_recommendation(context=context)
    assert with_own.transfer_sample_size < 5
    assert with_own.expected_win_rate > 0.65

    settings.LEARNING_TRANSFER_WEIGHT = 0.0
    assert get_signal_recommendation(context=dataclasses.replace(context)).transfer_sample_size == 0


def test_calibration_is_monotone_in_the_raw_confidence():
    rng = random.Random(3)
    for _ in range(50):
        buckets = {}
        for index in range(10):
            trials = rng.randint(0, 60)
            buckets[f"{index / 10:.1f}-{(index + 1) / 10:.1f}"] = (trials, rng.randint(0, trials))
        strength = rng.choice([0, 5, 20])
        curve = [calibrate_confidence(x / 200, buckets, prior_strength=strength) for x in range(201)]
        assert all(a <= b + 1e-12 for a, b in zip(curve, curve[1:]))
        assert all(0.0 <= value <= 1.0 for value in curve)


def test_calibration_learns_that_a_bucket_overpromises():
    record(300, wins=90, confidence=0.85)
    advice = get_signal_recommendation(context=SignalContextFactory(confidence_score=0.85))
    assert advice.calibrated_confidence < 0.5
    assert advice.confidence_adjustment < -0.35


@pytest.mark.parametrize(
    ("field", "value"),
    [("confidence_score", 1.2), ("confidence_score", float("nan")), ("system_type", "x"), ("market_regime", "moon"), ("stop_loss_pct", -0.01), ("strategy_type", "")],
)
def test_bad_context_is_rejected_naming_the_field(field, value):
    with pytest.raises(ValidationError) as caught:
        get_signal_recommendation(context=dataclasses.replace(SignalContextFactory(), **{field: value}))
    assert field in caught.value.message_dict
