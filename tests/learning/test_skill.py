"""The learner's running skill: scored out of sample against the running base rate, trusted only when it beats it."""
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from learning.skill import ScoredOutcome, SkillHistory, running_skill

START = datetime(2022, 1, 1, tzinfo=UTC)


def history(scores, wins, *, hold_hours=3):
    """Outcomes entered an hour apart, each exiting `hold_hours` later (so in exit order)."""
    return [
        ScoredOutcome(entry_time=START + timedelta(hours=i), exit_time=START + timedelta(hours=i + hold_hours), ml_score=score, success=bool(won))
        for i, (score, won) in enumerate(zip(scores, wins))
    ]


def test_a_probability_that_knows_the_outcome_is_trusted():
    wins = np.random.default_rng(0).random(400) < 0.4
    skill = running_skill(history(np.where(wins, 0.8, 0.2), wins))
    assert skill.trusted and skill.brier_skill > 0.3 and skill.auc == 1.0
    assert "beats the running base rate" in skill.reason


def test_a_probability_that_knows_nothing_is_not_trusted():
    rng = np.random.default_rng(1)
    wins = rng.random(400) < 0.4
    skill = running_skill(history(rng.random(400), wins))
    assert not skill.trusted and skill.brier_skill < 0
    assert "does not beat" in skill.reason


def test_too_few_scored_outcomes_give_no_say():
    wins = [True, False] * 30
    skill = running_skill(history([0.9 if won else 0.1 for won in wins], wins))
    assert not skill.trusted and skill.brier_skill is None and "needs 100" in skill.reason


def test_the_reference_counts_only_outcomes_that_had_exited_by_each_entry():
    # Outcome i enters at hour i and exits at hour i + 3: at entry i only outcomes 0..i-3 are known.
    wins = [True, True, True, False, False, False]
    outcomes = history([0.5] * 6, wins)
    skill = running_skill(outcomes, minimum=1)
    # Scored: entries 3, 4, 5 (the first three have no known outcome). References: 1, 1, 1.
    assert skill.outcomes == 3
    assert skill.reference_brier == pytest.approx(1.0)
    assert skill.brier == pytest.approx(0.25)


def test_outcomes_without_a_probability_count_for_the_base_rate_only():
    wins = np.random.default_rng(2).random(300) < 0.5
    scores = [None if i % 2 else (0.9 if won else 0.1) for i, won in enumerate(wins)]
    # Every other one (150), less those entered before any outcome had exited (hours 0 and 2).
    assert running_skill(history(scores, wins)).outcomes == 148


def test_a_kept_history_scores_exactly_as_its_last_outcomes_do_from_scratch():
    # The session adds outcomes one by one and forgets old ones; the dashboard scores the last
    # SKILL_HISTORY read from the database: both must give the same verdict, number for number.
    rng = np.random.default_rng(3)
    exits = START + np.cumsum(rng.integers(0, 3, 1500)) * timedelta(hours=1)
    outcomes = [
        ScoredOutcome(
            entry_time=exit_ - timedelta(hours=int(rng.integers(0, 40))),
            exit_time=exit_,
            ml_score=None if rng.random() < 0.2 else float(rng.random()),
            success=bool(rng.random() < 0.4),
        )
        for exit_ in exits
    ]
    kept = SkillHistory(keep=200)
    for count, outcome in enumerate(outcomes, start=1):
        kept.append(outcome)
        if count % 97 == 0 or count == len(outcomes):
            assert kept.skill(window=100, minimum=20) == running_skill(outcomes[max(0, count - 200) : count], window=100, minimum=20)
    assert len(kept) == 200


@pytest.mark.django_db
def test_scored_history_reads_the_stored_times_in_utc_in_exit_order():
    from learning.models import TrainingRecord
    from learning.selectors import scored_history
    from learning.services import store_trade_outcomes
    from tests.factories import TradeOutcomeFactory

    entries = [datetime(2022, 3, 1, 10, 15, 30, 250_000, tzinfo=UTC) + timedelta(hours=5 * i, microseconds=i) for i in range(6)]
    store_trade_outcomes(outcomes=[TradeOutcomeFactory(system_type="paper_trading", entry_time=entry) for entry in entries])
    stored = TrainingRecord.objects.order_by("exit_time", "pk").values_list("entry_time", "exit_time", "ml_score", "success")
    history = scored_history(system_type="paper_trading")
    assert [(o.entry_time, o.exit_time, o.ml_score, o.success) for o in history] == list(stored)
    assert all(o.entry_time.utcoffset() == timedelta(0) and o.exit_time.tzinfo is not None for o in history)
    assert scored_history(system_type="profit_scraping") == []


def test_times_written_as_text_read_back_in_utc_with_or_without_an_offset():
    from learning.selectors import _utc_from_text

    moment = datetime(2022, 3, 1, 10, 15, 30, 250_000, tzinfo=UTC)
    # PostgreSQL's text (any session time zone) and SQLite's stored text (UTC, no offset).
    for text in ("2022-03-01 10:15:30.25+00", "2022-03-01 12:15:30.25+02", "2022-03-01 10:15:30.250000"):
        assert _utc_from_text(text) == moment and _utc_from_text(text).utcoffset() == timedelta(0)
