"""Settings shared by every run mode, read strictly from the environment."""
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from tradelearn.env import (
    env_bool,
    env_cache,
    env_database,
    env_datetime,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

SECRET_KEY = env_str("SECRET_KEY")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from the project: the docs work offline
    "django_celery_beat",
    "tradelearn.api",
    "tradelearn.notifications",
    "learning",
    "trading",
    "scraping",
    "operations",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "tradelearn.urls"
WSGI_APPLICATION = "tradelearn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env_database("DATABASE_URL", "sqlite:///var/tradelearn.sqlite3", base_dir=BASE_DIR),
}
DATABASES["default"].setdefault("CONN_MAX_AGE", env_int("CONN_MAX_AGE", 60, minimum=0))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web server read while a replay writes; IMMEDIATE avoids lock upgrades.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CACHES = {"default": env_cache("CACHE_URL", env_str("REDIS_URL", None))}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
LOGIN_URL = "admin:login"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 2 * 1024 * 1024, minimum=1024)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- REST API -------------------------------------------------------------------------------
# A verified API token is remembered this long per process (revocations take effect within it).
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 30, minimum=0)
# Every API route needs a login or a token, reads included. URL names listed here (comma-separated,
# e.g. ml-hybrid-status,learning-summary) answer anonymous GETs too; writes never do. A name that is
# not an API route fails `manage.py check` (tradelearn/api/checks.py).
API_PUBLIC_READ_ROUTES = frozenset(env_list("API_PUBLIC_READ_ROUTES", []))
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tradelearn.api.authentication.CachedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tradelearn.api.permissions.IsAuthenticatedOrPublicRead"],
    "DEFAULT_PAGINATION_CLASS": "tradelearn.api.pagination.DefaultPagination",
    "PAGE_SIZE": 50,
    # django-filter's backend, refusing unknown query parameters with a 400 naming the known ones.
    "DEFAULT_FILTER_BACKENDS": ["tradelearn.api.filters.StrictDjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "tradelearn.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "tradelearn.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "tradelearn.api.throttling.AnonRateThrottle",
        "tradelearn.api.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "120/minute"),
        "user": env_str("API_THROTTLE_USER", "6000/minute"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "tradelearn API",
    "DESCRIPTION": "Trade outcomes, learned statistics, model predictions and paper trading.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema lists every private route: like the rest of the API it needs a login or a token.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI from drf-spectacular-sidecar's static files (pinned), never from a CDN. (No Redoc
    # page: its bundle loads its logo from a CDN whatever the settings.)
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models call their choice field `kind`; name each enum after what it is.
    "ENUM_NAME_OVERRIDES": {
        "ModelKindEnum": "learning.models.ModelKind",
        "FillSourceEnum": "learning.models.FillSource",
        "PriceLevelKindEnum": "scraping.models.PriceLevel.Kind",
    },
}

# --- Celery ---------------------------------------------------------------------------------
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", None, schemes=("redis", "rediss", "amqp", "memory"))
# Without a broker (the embedded default) tasks run in-process when queued.
CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL is None
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env_str("CELERY_RESULT_BACKEND", None)
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 30 * 60, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = env_int("CELERY_TASK_SOFT_TIME_LIMIT", 25 * 60, minimum=1)
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True

# --- Learning -------------------------------------------------------------------------------
# Weight, in trades, of the prior that thin history is shrunk toward (Beta prior strength).
LEARNING_PRIOR_STRENGTH = env_float("LEARNING_PRIOR_STRENGTH", 20.0, minimum=0.0)
# How much the other system's history counts, per trade, where this system's own is thin. Off by
# default: `evaluate` measured no help to either system (README, "Does learning help?").
LEARNING_TRANSFER_WEIGHT = env_float("LEARNING_TRANSFER_WEIGHT", 0.0, minimum=0.0, maximum=1.0)
LEARNING_KELLY_FRACTION = env_float("LEARNING_KELLY_FRACTION", 0.25, minimum=0.0, maximum=1.0)
LEARNING_MIN_POSITION_SIZE = env_float("LEARNING_MIN_POSITION_SIZE", 0.005, minimum=0.0, maximum=1.0)
LEARNING_MAX_POSITION_SIZE = env_float("LEARNING_MAX_POSITION_SIZE", 0.05, minimum=0.0, maximum=1.0)
# A signal is taken only when its expected net return per trade exceeds this fraction.
LEARNING_MIN_EXPECTED_PNL_PCT = env_float("LEARNING_MIN_EXPECTED_PNL_PCT", 0.0)
LEARNING_RETENTION_DAYS = env_int("LEARNING_RETENTION_DAYS", 730, minimum=1)
# Models: the online ensemble learns in mini-batches and keeps a checkpoint version every N samples.
LEARNING_ONLINE_BATCH_SIZE = env_int("LEARNING_ONLINE_BATCH_SIZE", 256, minimum=1)
LEARNING_CHECKPOINT_EVERY = env_int("LEARNING_CHECKPOINT_EVERY", 500, minimum=1)
# The batch model: "logistic" (standardized logistic regression) or "hgb" (gradient-boosted trees).
# Over 2020–2023 both scored the same within noise, and logistic replays about twice as fast
# (README, "Does learning help?").
LEARNING_BATCH_MODEL_KIND = env_str("LEARNING_BATCH_MODEL_KIND", "logistic")
# One batch model (estimator and calibration) per trading system: their outcomes follow different rules.
LEARNING_BATCH_PER_SYSTEM = env_bool("LEARNING_BATCH_PER_SYSTEM", True)
# The honesty guard: the model's probability gates and sizes a system's signals only while its Brier
# score on that system's recent outcomes beats the running base rate's (learning.skill); until then the
# engine decides on the learned statistics alone, and the decision's reasoning says so.
LEARNING_MODEL_GUARD = env_bool("LEARNING_MODEL_GUARD", True)
# How much a trade filled on an exchange (real fills and fees) weighs in the batch retrain against a paper one.
LEARNING_EXCHANGE_FILL_WEIGHT = env_float("LEARNING_EXCHANGE_FILL_WEIGHT", 1.0, minimum=0.1, maximum=100.0)
# The seed's blend of the batch model and the online ensemble, as prior weights; "adaptive" (the
# default) also weights each model by its recent log-loss on outcomes it had not been trained on,
# so a learner earns its share out of sample (issue 16; chosen on 2020-2022, see the README).
LEARNING_HYBRID_BATCH_WEIGHT = env_float("LEARNING_HYBRID_BATCH_WEIGHT", 0.7, minimum=0.0)
LEARNING_HYBRID_ONLINE_WEIGHT = env_float("LEARNING_HYBRID_ONLINE_WEIGHT", 0.3, minimum=0.0)
LEARNING_HYBRID_WEIGHTING = env_str("LEARNING_HYBRID_WEIGHTING", "adaptive")
# How often a process looks for a newly activated model version, in seconds.
LEARNING_MODEL_RECHECK_SECONDS = env_float("LEARNING_MODEL_RECHECK_SECONDS", 1.0, minimum=0.0)
LEARNING_MAX_EXAMPLES_PER_REQUEST = env_int("LEARNING_MAX_EXAMPLES_PER_REQUEST", 1000, minimum=1)
for _name, _allowed in (("LEARNING_BATCH_MODEL_KIND", ("hgb", "logistic")), ("LEARNING_HYBRID_WEIGHTING", ("fixed", "adaptive"))):
    if globals()[_name] not in _allowed:
        raise ImproperlyConfigured(f"{_name}={globals()[_name]!r} must be one of {', '.join(_allowed)}.")
if LEARNING_HYBRID_BATCH_WEIGHT + LEARNING_HYBRID_ONLINE_WEIGHT <= 0:
    raise ImproperlyConfigured("LEARNING_HYBRID_BATCH_WEIGHT and LEARNING_HYBRID_ONLINE_WEIGHT must not both be 0.")

# --- Features (schema v2's optional groups, off by default) ----------------------------------
# Higher-timeframe indicators of the same symbol (FreqAI's include_timeframes), e.g. "4h,1d";
# resampled from the hourly candles and read only once closed.
FEATURES_HIGHER_TIMEFRAMES = env_list("FEATURES_HIGHER_TIMEFRAMES", [])
# Other symbols whose indicators every symbol's decisions also see (include_corr_pairlist), e.g. "BTCUSDT".
FEATURES_CORRELATED_SYMBOLS = env_list("FEATURES_CORRELATED_SYMBOLS", [])
for _timeframe in FEATURES_HIGHER_TIMEFRAMES:
    if _timeframe not in ("2h", "4h", "8h", "12h", "1d"):
        raise ImproperlyConfigured(f"FEATURES_HIGHER_TIMEFRAMES: {_timeframe!r} is not one of 2h, 4h, 8h, 12h, 1d.")
for _symbol in FEATURES_CORRELATED_SYMBOLS:
    if not _symbol.isalnum():
        raise ImproperlyConfigured(f"FEATURES_CORRELATED_SYMBOLS: {_symbol!r} is not a plain symbol name such as BTCUSDT.")

# --- Trading ----------------------------------------------------------------------------------
# Live trading fetches these ccxt markets; candles are stored (and replayed) as e.g. BTCUSDT.
TRADING_EXCHANGE = env_str("TRADING_EXCHANGE", "binanceusdm")
TRADING_MARKETS = env_list("TRADING_MARKETS", ["BTC/USDT:USDT", "ETH/USDT:USDT"])
TRADING_SYMBOLS = env_list("TRADING_SYMBOLS", ["BTCUSDT", "ETHUSDT"])
TRADING_TIMEFRAME = env_str("TRADING_TIMEFRAME", "1h")
# A technical score (in [-1, 1]) must cross this to fire a signal.
TRADING_SIGNAL_THRESHOLD = env_float("TRADING_SIGNAL_THRESHOLD", 0.5, minimum=0.0, maximum=1.0)
# Raw technical confidence = 0.5 + span × strength: a prior that calibration corrects.
TRADING_CONFIDENCE_SPAN = env_float("TRADING_CONFIDENCE_SPAN", 0.2, minimum=0.0, maximum=0.5)
# The seed's blend: 0.6 technical, 0.4 model.
TRADING_MODEL_WEIGHT = env_float("TRADING_MODEL_WEIGHT", 0.4, minimum=0.0, maximum=1.0)
TRADING_STOP_ATR_MULTIPLE = env_float("TRADING_STOP_ATR_MULTIPLE", 2.0, minimum=0.1)
TRADING_TARGET_ATR_MULTIPLE = env_float("TRADING_TARGET_ATR_MULTIPLE", 3.0, minimum=0.1)
# Size of baseline trades (no learning) and of shadow trades, as a fraction of equity.
TRADING_BASELINE_POSITION_SIZE = env_float("TRADING_BASELINE_POSITION_SIZE", 0.02, minimum=0.0, maximum=1.0)
TRADING_STARTING_BALANCE = env_str("TRADING_STARTING_BALANCE", "10000")
# Profit scraping's opportunity rule (scraping/engine.py's docstring): distances in multiples of the
# candle's average true range. The close must be within the entry band of a level; the low (high) must
# reach within the touch distance and pierce it by at most the pierce distance; the wick must be at
# least this fraction of the candle's range; the level this strong (a trend is ignored past "very strong")
# and tested within the recent hours.
SCRAPING_ENTRY_BAND_ATR = env_float("SCRAPING_ENTRY_BAND_ATR", 0.6, minimum=0.0)
SCRAPING_TOUCH_ATR = env_float("SCRAPING_TOUCH_ATR", 0.15, minimum=0.0)
SCRAPING_MAX_PIERCE_ATR = env_float("SCRAPING_MAX_PIERCE_ATR", 1.0, minimum=0.0)
SCRAPING_MIN_WICK = env_float("SCRAPING_MIN_WICK", 0.5, minimum=0.0, maximum=1.0)
SCRAPING_MIN_STRENGTH = env_float("SCRAPING_MIN_STRENGTH", 0.65, minimum=0.0, maximum=1.0)
SCRAPING_VERY_STRONG = env_float("SCRAPING_VERY_STRONG", 0.85, minimum=0.0, maximum=1.0)
SCRAPING_RECENT_HOURS = env_int("SCRAPING_RECENT_HOURS", 120, minimum=1)
# Its exits: the stop beyond the level and wick, the target (cut short of the next level in the way),
# skipped when less than the minimum net fraction is left after fees and slippage; breakeven after this
# fraction of the target; out after this many candles.
SCRAPING_STOP_BUFFER_ATR = env_float("SCRAPING_STOP_BUFFER_ATR", 0.6, minimum=0.0)
SCRAPING_TARGET_ATR = env_float("SCRAPING_TARGET_ATR", 0.8, minimum=0.0)
SCRAPING_NEXT_LEVEL_BUFFER_ATR = env_float("SCRAPING_NEXT_LEVEL_BUFFER_ATR", 0.1, minimum=0.0)
SCRAPING_MIN_NET_TARGET = env_float("SCRAPING_MIN_NET_TARGET", 0.0015)
SCRAPING_BREAKEVEN_FRACTION = env_float("SCRAPING_BREAKEVEN_FRACTION", 0.8, minimum=0.0)
SCRAPING_MAX_HOLDING_CANDLES = env_int("SCRAPING_MAX_HOLDING_CANDLES", 12, minimum=1)
# Its price levels (scraping/levels.py's docstring): recomputed every N candles from a window of days;
# pivots of N candles each side; clustered within the tolerance (ATR multiples, a cluster at most so
# many tolerances wide); touches, bounces (within N candles) and magnets measured in ATR; recency's
# half-life in candles; Fibonacci retracements over N candles; levels tested fewer times dropped.
SCRAPING_LEVEL_PIVOT_SPAN = env_int("SCRAPING_LEVEL_PIVOT_SPAN", 5, minimum=1)
SCRAPING_LEVEL_WINDOW_DAYS = env_int("SCRAPING_LEVEL_WINDOW_DAYS", 30, minimum=1)
SCRAPING_LEVEL_RECOMPUTE_EVERY = env_int("SCRAPING_LEVEL_RECOMPUTE_EVERY", 24, minimum=1)
SCRAPING_LEVEL_CLUSTER_ATR = env_float("SCRAPING_LEVEL_CLUSTER_ATR", 0.5, minimum=0.0)
SCRAPING_LEVEL_MAX_CLUSTER_TOLS = env_float("SCRAPING_LEVEL_MAX_CLUSTER_TOLS", 3.0, minimum=0.0)
SCRAPING_LEVEL_TOUCH_ATR = env_float("SCRAPING_LEVEL_TOUCH_ATR", 0.25, minimum=0.0)
SCRAPING_LEVEL_BOUNCE_ATR = env_float("SCRAPING_LEVEL_BOUNCE_ATR", 1.5, minimum=0.0)
SCRAPING_LEVEL_BOUNCE_CANDLES = env_int("SCRAPING_LEVEL_BOUNCE_CANDLES", 12, minimum=1)
SCRAPING_LEVEL_MIN_TOUCHES = env_int("SCRAPING_LEVEL_MIN_TOUCHES", 2, minimum=1)
SCRAPING_LEVEL_RECENCY_HALF_LIFE = env_float("SCRAPING_LEVEL_RECENCY_HALF_LIFE", 72.0, minimum=0.001)
SCRAPING_LEVEL_MAGNET_ATR = env_float("SCRAPING_LEVEL_MAGNET_ATR", 0.5, minimum=0.0)
SCRAPING_LEVEL_MAGNET_BONUS = env_float("SCRAPING_LEVEL_MAGNET_BONUS", 0.05, minimum=0.0)
SCRAPING_LEVEL_FIB_LOOKBACK = env_int("SCRAPING_LEVEL_FIB_LOOKBACK", 168, minimum=1)
# Live market data: "clock" releases stored candles as if they were closing now (no exchange needed);
# "exchange" polls TRADING_EXCHANGE's closed candles through ccxt.
MARKET_FEED = env_str("MARKET_FEED", "clock")
if MARKET_FEED not in ("clock", "exchange"):
    raise ImproperlyConfigured(f"MARKET_FEED={MARKET_FEED!r} must be one of clock, exchange.")
# Market seconds per wall second: 60 closes one hourly candle a minute; 1 is real time.
MARKET_FEED_CLOCK_SPEED = env_float("MARKET_FEED_CLOCK_SPEED", 60.0, minimum=0.001)
# Market time the clock starts at (default: once the stored candles give a live tick its full history).
MARKET_FEED_CLOCK_START = env_datetime("MARKET_FEED_CLOCK_START")
# After a failed fetch the next waits this long, doubling per failure up to the maximum.
MARKET_FEED_BACKOFF_SECONDS = env_float("MARKET_FEED_BACKOFF_SECONDS", 60.0, minimum=0.0)
MARKET_FEED_BACKOFF_MAX_SECONDS = env_float("MARKET_FEED_BACKOFF_MAX_SECONDS", 1800.0, minimum=0.0)
# /healthz: a check is stale past its bound, in seconds. Ticks and candles (0): two candles on the
# feed's clock plus five minutes (an hour's candles at the clock's speed 60: 7 minutes).
HEALTH_TICK_MAX_AGE_SECONDS = env_float("HEALTH_TICK_MAX_AGE_SECONDS", 0.0, minimum=0.0)
HEALTH_CANDLE_MAX_AGE_SECONDS = env_float("HEALTH_CANDLE_MAX_AGE_SECONDS", 0.0, minimum=0.0)
# The online update runs every 5 minutes; stale only while closed outcomes wait to be learned.
HEALTH_ONLINE_UPDATE_MAX_AGE_SECONDS = env_float("HEALTH_ONLINE_UPDATE_MAX_AGE_SECONDS", 3600.0, minimum=1.0)
# The batch retrain runs daily.
HEALTH_RETRAIN_MAX_AGE_SECONDS = env_float("HEALTH_RETRAIN_MAX_AGE_SECONDS", 2 * 86400.0, minimum=1.0)

# Orders on an exchange (accounts whose broker is "exchange") go to TRADING_EXCHANGE's testnet or demo
# trading. Real money needs this AND the account's real_money flag. Keys: EXCHANGE_API_KEY and
# EXCHANGE_API_SECRET, read from the environment when an order is placed, never stored or logged.
EXCHANGE_REAL_MONEY = env_bool("EXCHANGE_REAL_MONEY", False)

# --- Notifications (off unless a target is set) ------------------------------------------------
# A generic webhook receives each event as JSON {"event", "text", "data", "at"}.
NOTIFY_WEBHOOK_URL = env_url("NOTIFY_WEBHOOK_URL", None, schemes=("http", "https"))
# Telegram: a bot token from @BotFather and the chat it writes to (the token is a secret: env only).
NOTIFY_TELEGRAM_BOT_TOKEN = env_str("NOTIFY_TELEGRAM_BOT_TOKEN", None)
NOTIFY_TELEGRAM_CHAT_ID = env_str("NOTIFY_TELEGRAM_CHAT_ID", None)
NOTIFY_TELEGRAM_API_URL = env_url("NOTIFY_TELEGRAM_API_URL", "https://api.telegram.org", schemes=("http", "https"))
NOTIFY_EVENTS = env_list("NOTIFY_EVENTS", [
    "trade_opened", "trade_closed", "retrain_adopted", "retrain_refused", "feed_failing", "feed_recovered",
    "reconciliation_mismatch", "kill_switch",
])  # fmt: skip
NOTIFY_TIMEOUT_SECONDS = env_float("NOTIFY_TIMEOUT_SECONDS", 5.0, minimum=0.1)
# Replay's learning cadence, in outcomes (real and shadow closes) since the last update.
REPLAY_ONLINE_UPDATE_EVERY = env_int("REPLAY_ONLINE_UPDATE_EVERY", 10, minimum=1)
REPLAY_RETRAIN_EVERY = env_int("REPLAY_RETRAIN_EVERY", 200, minimum=1)
# The batch model also waits until the outcomes since its last retrain reach this fraction of those it
# was trained on. 0: every REPLAY_RETRAIN_EVERY outcomes. 1.0: each time the history doubles, measurably
# weaker learning, which with the gradient-boosted trees replayed about twice as fast (README, "Replays
# keep their books in memory").
REPLAY_RETRAIN_GROWTH = env_float("REPLAY_RETRAIN_GROWTH", 0.0, minimum=0.0)
# A replay retrains in a worker process beside it and adopts the new batch model this many outcomes
# after it started (waiting there if the worker is behind), so results never depend on machine speed.
# Closer to REPLAY_RETRAIN_EVERY replays faster (the worker waits less) with staler models: with the
# gradient-boosted trees 190 was about 25 % faster and measurably weaker (README, "Replays keep
# their books in memory"); the logistic default retrains too quickly for it to matter.
REPLAY_RETRAIN_LAG = env_int("REPLAY_RETRAIN_LAG", 100, minimum=0)
# Retrain the batch model in market time instead: as of every N days from the replay's start (0: count
# outcomes as above), adopted REPLAY_RETRAIN_LAG_HOURS of market time later. Its retrains do not grow in
# number with the symbols replayed, so a replay's cost grows with its rows, not their square; not the
# default until evaluated (README, "Replays keep their books in memory").
REPLAY_RETRAIN_DAYS = env_int("REPLAY_RETRAIN_DAYS", 0, minimum=0)
REPLAY_RETRAIN_LAG_HOURS = env_int("REPLAY_RETRAIN_LAG_HOURS", 24, minimum=0)
# A replay keeps its books in memory and writes them in one transaction every this many outcomes.
REPLAY_WRITE_EVERY = env_int("REPLAY_WRITE_EVERY", 1000, minimum=1)
