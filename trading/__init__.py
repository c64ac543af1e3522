"""Trading: market data, features, signals, paper accounts and the paper trading engine."""
