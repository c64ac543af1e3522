"""Learning core: training records, learned statistics, models and their API."""
