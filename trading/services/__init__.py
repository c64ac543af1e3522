"""Trading services: the writes and business rules of market data, accounts and trades."""
