"""Average uniqueness: overlapping outcomes share their weight, within a symbol and, when asked, within a system."""
import numpy as np

from learning.ml.weights import average_uniqueness

HOURS = np.array(["2022-01-01T00", "2022-01-01T00", "2022-01-01T00", "2022-01-01T05"], dtype="datetime64[h]")


def test_outcomes_overlap_only_with_their_own_systems_when_systems_are_given():
    entry, exit_ = HOURS, HOURS + np.timedelta64(1, "h")
    symbols = ["BTC", "BTC", "BTC", "BTC"]
    systems = ["paper_trading", "profit_scraping", "profit_scraping", "paper_trading"]
    # All systems together: the first three share hours 0 and 1 three ways; the last stands alone.
    np.testing.assert_allclose(average_uniqueness(entry, exit_, symbols), np.array([1 / 3, 1 / 3, 1 / 3, 1.0]) / 0.5)
    # Per system: the paper trade at hour 0 no longer shares with the two scraping trades.
    raw = np.array([1.0, 0.5, 0.5, 1.0])
    np.testing.assert_allclose(average_uniqueness(entry, exit_, symbols, systems), raw / raw.mean())
