"""Plain-text tables of study scores, one row per variant and system, as `manage.py research study` prints them."""
import math

import pandas as pd

COLUMNS = (
    ("signals", "signals", "{:.0f}"),
    ("base", "base_rate", "{:.1%}"),
    ("AUC", "auc", "{:.3f}"),
    ("±", "auc_se", "{:.3f}"),
    ("Brier skill", "brier_skill", "{:+.4f}"),
    ("take p>base", "prob_taken", "{:.0f}"),
    ("precision lift", "prob_lift", "{:+.1%}"),
    ("SE", "prob_lift_se", "{:.1%}"),
    ("P&L lift", "prob_pnl_lift", "{:+.3f}"),
    ("take EV>0", "ev_taken", "{:.0f}"),
    ("EV P&L lift", "ev_pnl_lift", "{:+.3f}"),
    ("SE ", "ev_pnl_lift_se", "{:.3f}"),
    ("PF all", "all_pf", "{:.2f}"),
    ("PF EV", "ev_pf", "{:.2f}"),
    ("mean P&L all", "all_mean_pnl", "{:+.3f}"),
    ("mean P&L EV", "ev_mean_pnl", "{:+.3f}"),
)
LEGEND = (
    "AUC ± a weekly-block bootstrap SE; Brier skill against the system's running base rate; precision lift of taking\n"
    "p > running base rate, over all scored signals' base rate; P&L lift: taken minus all signals' mean net P&L per\n"
    "signal, in points of notional (0.1 = 0.1 %); EV>0: take when win probability x the plan's payoff after fees is positive."
)


def _cell(value, pattern: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return pattern.format(value)


def scores_table(rows: pd.DataFrame) -> str:
    """`rows`: one row per variant and system with a `variant` and a `system` column and the score columns."""
    header = ["variant", "system", *(title for title, _, _ in COLUMNS)]
    body = [
        [str(row["variant"]), str(row["system"]), *(_cell(row.get(key), pattern) for _, key, pattern in COLUMNS)]
        for _, row in rows.iterrows()
    ]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = ["  ".join(text.ljust(width) if i < 2 else text.rjust(width) for i, (text, width) in enumerate(zip(line, widths))) for line in [header, *body]]
    return "\n".join(lines)
