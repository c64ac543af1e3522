"""The one engine registry: what the replay, the live ticks and the evaluation look engines up by."""
from scraping.engine import ProfitScrapingEngine
from trading.engine import TradingEngine

# By the name the commands take (--engines paper,scraping).
ENGINES: dict[str, type[TradingEngine]] = {"paper": TradingEngine, "scraping": ProfitScrapingEngine}


def engine_class_for(system_type: str) -> type[TradingEngine]:
    """The engine that trades accounts of `system_type` (an account's PaperAccount.system_type)."""
    for engine_class in ENGINES.values():
        if engine_class.system_type == system_type:
            return engine_class
    raise ValueError(f"No engine trades {system_type} accounts.")
