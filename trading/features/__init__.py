"""Indicators, market regimes and the feature rows every model reads."""
