"""Settings of the Celery workers the fault tests start: the test settings, a killed task redelivered in seconds."""
from tradelearn.settings.test import *  # noqa: F403

# Redis gives an unacknowledged task (its worker was killed) to another worker once this has
# passed; Celery's default is an hour, far too long to wait for in a test.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 6, "unacked_restore_interval": 1, "unacked_restore_throttle": 1}
