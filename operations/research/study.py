"""Walk-forward study of the signal dataset: expanding-window retrains, causal training sets, per-system scores."""
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from learning.ml.weights import average_uniqueness
from operations.evaluation.metrics import iso_weeks, weekly_block_se
from operations.research.dataset import utc64
from operations.research.features import feature_matrix
from operations.research.learners import make_learner

SYSTEMS = ("paper_trading", "profit_scraping")


@dataclass(frozen=True, kw_only=True)
class StudyConfig:
    """One variant: which learner reads which feature groups, and how the walk-forward runs.

    Decisions made in [start, end) are scored. Models are retrained at every `retrain` boundary
    (a pandas frequency, monthly by default) on the outcomes known at least `embargo` before it.
    """

    learner: str
    groups: tuple[str, ...]
    start: pd.Timestamp
    end: pd.Timestamp
    retrain: str = "MS"
    embargo: pd.Timedelta = pd.Timedelta(hours=24)
    min_train: int = 300
    per_system: bool = True
    uniqueness_weights: bool = True
    shuffle_seed: int | None = None  # the control: labels permuted within each system before anything is learned
    bootstrap: int = 200
    seed: int = 0

    @property
    def name(self) -> str:
        parts = [self.learner, "+".join(self.groups), "per-system" if self.per_system else "pooled"]
        if not self.uniqueness_weights:
            parts.append("unweighted")
        if self.shuffle_seed is not None:
            parts.append(f"shuffled({self.shuffle_seed})")
        return " ".join(parts)


@dataclass
class Fit:
    """One retrain: when it happened, what it saw (for the look-ahead checks) and what it predicted."""

    system: str
    retrain_time: pd.Timestamp
    train_rows: int
    latest_known_time: pd.Timestamp | None
    predicted_rows: int
    earliest_decision_time: pd.Timestamp | None


@dataclass
class StudyResult:
    config: StudyConfig
    predictions: pd.DataFrame  # scored rows: system, decision_time, success, pnl_pct, probability, base_rate, ev, take_*
    fits: list[Fit] = field(default_factory=list)
    scores: pd.DataFrame | None = None


def _shuffled(data: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Every outcome's label and P&L moved to another signal of the same system: nothing real is left to learn."""
    rng = np.random.default_rng(seed)
    data = data.copy()
    for _, index in data.groupby("system").groups.items():
        order = rng.permutation(len(index))
        for column in ("success", "pnl_pct"):
            data.loc[index, column] = data.loc[index, column].to_numpy()[order]
    return data


def running_base_rate(known_time: np.ndarray, success: np.ndarray, decision_time: np.ndarray, prior: float = 0.5) -> np.ndarray:
    """At each decision, the success rate of the outcomes known by then (`prior` before any is)."""
    order = np.argsort(known_time, kind="stable")
    wins = np.concatenate([[0.0], np.cumsum(success[order].astype(float))])
    known = np.searchsorted(known_time[order], decision_time, side="right")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(known > 0, wins[known] / np.maximum(known, 1), prior)


def _payoffs(train: pd.DataFrame, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the expected net gain if it wins and net loss if it loses, as fractions of notional.

    The plan's target and stop net of both fees, each scaled by how far realised wins and losses
    of the training outcomes fell from their own plans (trailing stops, break-even moves and time
    exits cut both short); geometry is what separates a small-target scrape from a wide one.
    """
    def planned(frame):
        fee = frame["fee_rate"].to_numpy()
        return frame["target_pct"].to_numpy() - 2 * fee, frame["stop_pct"].to_numpy() + 2 * fee

    train_win, train_loss = planned(train)
    won = train["success"].to_numpy(dtype=bool)
    pnl = train["pnl_pct"].to_numpy()
    win_scale = pnl[won].sum() / max(train_win[won].sum(), 1e-12) if won.any() else 1.0
    loss_scale = -pnl[~won].sum() / max(train_loss[~won].sum(), 1e-12) if (~won).any() else 1.0
    row_win, row_loss = planned(rows)
    return np.maximum(row_win, 0.0) * win_scale, row_loss * loss_scale


def _walk(*, seen: pd.DataFrame, truth: pd.DataFrame, X: np.ndarray, config: StudyConfig, system: str, rows_mask: np.ndarray, result: StudyResult) -> list[pd.DataFrame]:
    """Retrain at each boundary on what `seen` says had been learned by then; predict until the next one."""
    boundaries = pd.date_range(config.start.ceil("D"), config.end, freq=config.retrain, tz="UTC")
    boundaries = pd.DatetimeIndex([config.start]).append(boundaries[boundaries > config.start]).append(pd.DatetimeIndex([config.end]))
    decision_time, known_time = utc64(seen["decision_time"]), utc64(seen["known_time"])
    out = []
    for retrain_time, until in zip(boundaries[:-1], boundaries[1:]):
        target = rows_mask & (decision_time >= utc64([retrain_time])[0]) & (decision_time < utc64([until])[0])
        if not target.any():
            continue
        train = rows_mask & (known_time <= utc64([retrain_time - config.embargo])[0])
        train_frame = seen[train]
        result.fits.append(
            Fit(
                system=system,
                retrain_time=retrain_time,
                train_rows=int(train.sum()),
                latest_known_time=train_frame["known_time"].max() if train.any() else None,
                predicted_rows=int(target.sum()),
                earliest_decision_time=seen.loc[target, "decision_time"].min(),
            )
        )
        frame = truth.loc[target, ["system", "symbol", "decision_time", "known_time", "success", "pnl_pct"]].copy()
        y = train_frame["success"].to_numpy(dtype=int)
        if len(train_frame) < config.min_train or len(np.unique(y)) < 2:
            frame["probability"], frame["ev"] = np.nan, np.nan
            out.append(frame)
            continue
        weights = (
            average_uniqueness(train_frame["entry_time"].to_numpy(), train_frame["exit_time"].to_numpy(), train_frame["symbol"].to_numpy())
            if config.uniqueness_weights
            else np.ones(len(train_frame))
        )
        learner = make_learner(config.learner, seed=config.seed)
        learner.fit(X[train], y, sample_weight=weights)
        frame["probability"] = learner.predict_proba(X[target])
        win, loss = _payoffs(train_frame, seen[target])
        frame["ev"] = frame["probability"] * win - (1 - frame["probability"]) * loss
        out.append(frame)
    return out


def run_study(data: pd.DataFrame, config: StudyConfig) -> StudyResult:
    """Out-of-sample predictions for every decision in the config's window, and their scores.

    `data` is a signal dataset (`operations.research.dataset`): one row per signal with its
    features, plan and outcome. A model that predicts a decision was trained only on outcomes
    known `embargo` before the retrain that precedes the decision, and the recent-record features
    of a decision read only outcomes known when it was made.
    """
    truth = data.sort_values(["decision_time", "system", "symbol"], kind="stable").reset_index(drop=True)
    seen = _shuffled(truth, config.shuffle_seed) if config.shuffle_seed is not None else truth
    X = feature_matrix(seen, config.groups)
    result = StudyResult(config=config, predictions=pd.DataFrame())
    frames = []
    walk = dict(seen=seen, truth=truth, X=X, config=config, result=result)
    if config.per_system:
        for system in SYSTEMS:
            mask = (truth["system"] == system).to_numpy()
            if mask.any():
                frames += _walk(**walk, system=system, rows_mask=mask)
    else:
        frames = _walk(**walk, system="all", rows_mask=np.ones(len(truth), dtype=bool))
    predictions = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["system", "probability"])
    result.predictions = _with_decisions(predictions, truth)
    result.scores = score_predictions(result.predictions, bootstrap=config.bootstrap, seed=config.seed)
    return result


def _with_decisions(predictions: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Each prediction with its running base rate (its system's outcomes known by then) and both take rules."""
    predictions = predictions.sort_values(["decision_time", "system", "symbol"], kind="stable").reset_index(drop=True)
    predictions["base_rate"] = np.nan
    for system, index in predictions.groupby("system").groups.items():
        history = truth[truth["system"] == system]
        predictions.loc[index, "base_rate"] = running_base_rate(
            utc64(history["known_time"]),
            history["success"].to_numpy(),
            utc64(predictions.loc[index, "decision_time"]),
        )
    predictions["all_base_rate"] = running_base_rate(
        utc64(truth["known_time"]), truth["success"].to_numpy(), utc64(predictions["decision_time"])
    )
    # Two ways to act on a prediction: a win probability above the running base rate, or a
    # positive expected net P&L after fees (win probability times the plan's payoff).
    predictions["take_prob"] = predictions["probability"] > predictions["base_rate"]
    predictions["take_ev"] = predictions["ev"] > 0
    return predictions[predictions["probability"].notna()].reset_index(drop=True)


def _profit_factor(pnl: np.ndarray) -> float:
    losses = -pnl[pnl < 0].sum()
    return float(pnl[pnl > 0].sum() / losses) if losses > 0 else float("nan")


def _se(weeks, statistic, bootstrap: int, seed: int) -> float:
    value = weekly_block_se(weeks, statistic, resamples=bootstrap, seed=seed)
    return float("nan") if value is None else value


def score_rows(rows: pd.DataFrame, *, bootstrap: int = 200, seed: int = 0) -> dict:
    """The study's figures for one set of scored predictions (one system, or all)."""
    y = rows["success"].to_numpy(dtype=float)
    p = rows["probability"].to_numpy(dtype=float)
    base = rows["base_rate"].to_numpy(dtype=float)
    pnl = rows["pnl_pct"].to_numpy(dtype=float) * 100  # percentage points of notional per signal
    weeks = iso_weeks(rows["decision_time"])
    brier, brier_base = np.mean((p - y) ** 2), np.mean((base - y) ** 2)
    scores = {
        "signals": len(rows),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "auc": float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else float("nan"),
        "brier_skill": float(1 - brier / brier_base) if brier_base > 0 else float("nan"),
        "mean_p": float(p.mean()) if len(p) else float("nan"),
        "all_mean_pnl": float(pnl.mean()) if len(pnl) else float("nan"),
        "all_pf": _profit_factor(pnl),
    }
    scores["auc_se"] = _se(weeks, lambda i: roc_auc_score(y[i], p[i]) if 0 < y[i].sum() < len(i) else np.nan, bootstrap, seed)
    for rule in ("prob", "ev"):
        take = rows[f"take_{rule}"].to_numpy(dtype=bool)

        def lift(i, take=take):
            return y[i][take[i]].mean() - y[i].mean() if take[i].any() else np.nan

        def pnl_lift(i, take=take):
            return pnl[i][take[i]].mean() - pnl[i].mean() if take[i].any() else np.nan

        scores[f"{rule}_taken"] = int(take.sum())
        scores[f"{rule}_precision"] = float(y[take].mean()) if take.any() else float("nan")
        scores[f"{rule}_lift"] = float(lift(np.arange(len(y))))
        scores[f"{rule}_lift_se"] = _se(weeks, lift, bootstrap, seed)
        scores[f"{rule}_mean_pnl"] = float(pnl[take].mean()) if take.any() else float("nan")
        scores[f"{rule}_pnl_lift"] = float(pnl_lift(np.arange(len(y))))
        scores[f"{rule}_pnl_lift_se"] = _se(weeks, pnl_lift, bootstrap, seed)
        scores[f"{rule}_pf"] = _profit_factor(pnl[take])
    return scores


def score_predictions(predictions: pd.DataFrame, *, bootstrap: int = 200, seed: int = 0) -> pd.DataFrame:
    """Scores per system and over all systems (where the base rate is every system's, so pooling shows)."""
    table = {}
    for system, rows in predictions.groupby("system", sort=True):
        table[system] = score_rows(rows, bootstrap=bootstrap, seed=seed)
    if len(predictions) and predictions["system"].nunique() > 1:
        pooled = predictions.assign(base_rate=predictions["all_base_rate"])
        table["all"] = score_rows(pooled, bootstrap=bootstrap, seed=seed)
    return pd.DataFrame.from_dict(table, orient="index")
