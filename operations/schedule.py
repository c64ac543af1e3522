"""The operations app's default beat schedule: poll the market data feed and tick every account's engine."""
PERIODIC_TASKS = (
    # Name and task as when this lived in trading (rows already created keep working; the task keeps
    # its name explicitly in operations.tasks). Every minute: a 1h candle is picked up within a minute of closing; ticks claim each candle once.
    ("trading: fetch candles and tick engines", "trading.tasks.schedule_engine_ticks_task", {"interval": {"every": 1, "period": "minutes"}}),
)
