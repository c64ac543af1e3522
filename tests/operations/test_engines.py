"""The engine registry: each engine by its command name, and the engine for an account's system type."""
import pytest

from learning.models import SystemType
from operations.engines import ENGINES, engine_class_for
from scraping.engine import ProfitScrapingEngine
from trading.engine import TradingEngine


def test_the_registry_names_both_engines():
    assert ENGINES == {"paper": TradingEngine, "scraping": ProfitScrapingEngine}


def test_each_system_type_has_its_engine():
    assert engine_class_for(SystemType.PAPER_TRADING.value) is TradingEngine
    assert engine_class_for(SystemType.PROFIT_SCRAPING.value) is ProfitScrapingEngine


def test_an_unknown_system_type_is_refused_by_name():
    with pytest.raises(ValueError, match="No engine trades martingale accounts"):
        engine_class_for("martingale")
