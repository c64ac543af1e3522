"""Small statistics used by the aggregates and recommendations, on plain floats."""
import math


def shrink(successes: float, trials: float, *, prior_mean: float, prior_strength: float) -> float:
    """Posterior mean of a Beta prior (mean, strength in trades) after `trials` observations."""
    return (successes + prior_mean * prior_strength) / (trials + prior_strength)


def mean(total: float, count: int) -> float:
    return total / count if count else 0.0


def sharpe(sum_x: float, sum_sq_x: float, count: int) -> float | None:
    """Mean over sample standard deviation; None when undefined (fewer than 2, or no spread)."""
    if count < 2:
        return None
    average = sum_x / count
    variance = (sum_sq_x - count * average * average) / (count - 1)
    if variance <= 1e-18:
        return None
    return average / math.sqrt(variance)


def kelly_fraction(win_rate: float, payoff_ratio: float) -> float:
    """Kelly's optimal fraction f* = p − (1 − p) / b for win probability p and payoff ratio b."""
    if payoff_ratio <= 0:
        return 0.0
    return win_rate - (1.0 - win_rate) / payoff_ratio


def correlation(n: int, sum_x: float, sum_sq_x: float, sum_y: float, sum_xy: float) -> float:
    """Pearson correlation of x with a 0/1 outcome y (so sum of y² equals sum of y)."""
    if n < 2:
        return 0.0
    cov = n * sum_xy - sum_x * sum_y
    var_x = n * sum_sq_x - sum_x * sum_x
    var_y = n * sum_y - sum_y * sum_y
    if var_x <= 1e-12 * max(1.0, n * sum_sq_x) or var_y <= 0:
        return 0.0
    return max(-1.0, min(1.0, cov / math.sqrt(var_x * var_y)))
