"""Market data files and exchange conventions: readers, symbol and timeframe naming."""
