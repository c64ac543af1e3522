"""The learning app's default beat schedule (created by `manage.py setup_periodic_tasks`, then edited in the admin)."""
PERIODIC_TASKS = (
    ("learning: online update", "learning.tasks.online_update_task", {"interval": {"every": 5, "period": "minutes"}}),
    ("learning: batch retrain", "learning.tasks.batch_retrain_task", {"crontab": {"minute": "15", "hour": "2"}}),
    ("learning: prune training data", "learning.tasks.prune_training_data_task", {"crontab": {"minute": "45", "hour": "3"}}),
    ("learning: rebuild learning stats", "learning.tasks.rebuild_learning_stats_task", {"crontab": {"minute": "30", "hour": "4", "day_of_week": "0"}}),
)
