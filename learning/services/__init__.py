"""The learning service: what engines and the API call to store outcomes and ask for advice."""
from learning.services.aggregates import aggregates_rebuild
from learning.services.outcomes import store_trade_outcome, store_trade_outcomes
from learning.services.recommendation import get_signal_recommendation
from learning.services.retention import training_records_prune

__all__ = [
    "aggregates_rebuild",
    "get_signal_recommendation",
    "store_trade_outcome",
    "store_trade_outcomes",
    "training_records_prune",
]
