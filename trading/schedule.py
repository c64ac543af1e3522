"""The trading app's default beat schedule: reconcile exchange accounts with their books."""
PERIODIC_TASKS = (
    # Does nothing unless an account's broker is "exchange".
    ("trading: reconcile exchange accounts", "trading.tasks.reconcile_exchange_accounts_task", {"interval": {"every": 5, "period": "minutes"}}),
)
