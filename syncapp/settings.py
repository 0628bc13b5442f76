"""Settings, 12-factor style: every knob comes from the environment (django-environ).

With no environment at all the service runs on SQLite and Celery's filesystem broker, so a
fresh machine needs only Python. Production sets DATABASE_URL and CELERY_BROKER_URL.
"""

import os
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(BASE_DIR / ".env")

# Where the embedded default keeps its files (SQLite database, broker folders, beat schedule).
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))

# The development default for both keys below is public; with DEBUG off the service refuses
# to start on it (`ops.checks`) unless ALLOW_DEV_KEYS is set (tests and CI only).
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"
DEV_ENCRYPTION_KEY = "dev-insecure-field-encryption-key-change-me"

DEBUG = env.bool("DEBUG", default=False)
ALLOW_DEV_KEYS = env.bool("ALLOW_DEV_KEYS", default=False)
SECRET_KEY = env.str("SECRET_KEY", default=DEV_SECRET_KEY)
# One or more keys (comma-separated); the first encrypts, all decrypt, so keys can rotate.
FIELD_ENCRYPTION_KEYS = env.list("FIELD_ENCRYPTION_KEYS", default=[DEV_ENCRYPTION_KEY])
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

PUBLIC_BASE_URL = env.str("PUBLIC_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")

# The local Jira site and the secret its own webhook carries.
LOCAL_JIRA_URL = env.str("LOCAL_JIRA_URL", default="")
LOCAL_JIRA_FLAVOR = env.str("LOCAL_JIRA_FLAVOR", default="cloud")
LOCAL_JIRA_USER = env.str("LOCAL_JIRA_USER", default="")
LOCAL_JIRA_TOKEN = env.str("LOCAL_JIRA_TOKEN", default="")
LOCAL_WEBHOOK_SECRET = env.str("LOCAL_WEBHOOK_SECRET", default="")

# Which Jira URLs (LOCAL_JIRA_URL, partner sites) we may call (SSRF): https only unless
# JIRA_ALLOW_HTTP; no loopback, private, link-local or metadata address unless
# JIRA_ALLOWED_HOSTS names the host, the address or its network (CIDR).
JIRA_ALLOW_HTTP = env.bool("JIRA_ALLOW_HTTP", default=False)
JIRA_ALLOWED_HOSTS = env.list("JIRA_ALLOWED_HOSTS", default=[])

# How long a rotated-out incoming secret stays valid, so the partner can update their webhook.
SECRET_ROTATION_GRACE_SECONDS = env.int("SECRET_ROTATION_GRACE_SECONDS", default=24 * 3600)

# Scenario B: how long a connection invitation's one-time token stays valid.
CONNECTION_INVITATION_TTL_SECONDS = env.int("CONNECTION_INVITATION_TTL_SECONDS", default=72 * 3600)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "organizations.apps.OrganizationsConfig",
    "sync.apps.SyncConfig",
    "webhooks.apps.WebhooksConfig",
    "ops.apps.OpsConfig",
    "axes",
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
    # Last, as django-axes asks: answers a locked-out admin login with 429.
    "axes.middleware.AxesMiddleware",
]

# --- Failed logins ------------------------------------------------------------------------
# The admin login: django-axes counts failures per client address (in the database, so every
# web machine sees them) and locks the address out for a while.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("ADMIN_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("ADMIN_LOGIN_LOCKOUT_MINUTES", default=15))
AXES_ONLY_ADMIN_SITE = True  # the API has its own throttle (core.authentication)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_PARAMETERS = ["ip_address"]
AXES_VERBOSE = False
# The API: failed HTTP Basic / token authentications per client address and window.
API_AUTH_FAILURE_LIMIT = env.int("API_AUTH_FAILURE_LIMIT", default=10)
API_AUTH_FAILURE_WINDOW_SECONDS = env.int("API_AUTH_FAILURE_WINDOW_SECONDS", default=300)
# Where the API's failure counts live: CACHES, below (shared by every web process).

ROOT_URLCONF = "syncapp.urls"
WSGI_APPLICATION = "syncapp.wsgi.application"

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
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
# Connections are kept CONN_MAX_AGE seconds by web threads and worker processes alike (a new
# PostgreSQL connection costs a backend process and its cold caches), checked before reuse.
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", env.bool("CONN_HEALTH_CHECKS", default=True))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL and a busy timeout let the web process and the worker share the file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
# Set STATIC_ROOT (and run collectstatic) in production; without it files come from the apps.
STATIC_ROOT = env.str("STATIC_ROOT", default=None)
# Static files come straight from the apps, so no collectstatic step is needed to run.
WHITENOISE_USE_FINDERS = env.bool("WHITENOISE_USE_FINDERS", default=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# Echo locks outlive Jira's late-retry window (a retried webhook may come ~30 minutes late).
ECHO_LOCK_TTL_SECONDS = env.int("ECHO_LOCK_TTL_SECONDS", default=35 * 60)

# Mount the benchmark's baseline endpoint (bench/ only; never in production).
BENCH_ENDPOINTS = env.bool("BENCH_ENDPOINTS", default=False)

# The largest webhook body accepted (Jira's issue payloads are rarely above 100 KB).
WEBHOOK_MAX_BODY_BYTES = env.int("WEBHOOK_MAX_BODY_BYTES", default=1024 * 1024)
# A delivery's INSERT is a prepared statement on each database connection (PostgreSQL): no
# quoting of its body into the SQL text, no parsing and planning per delivery. Off behind a
# pooler that cannot keep prepared statements (PgBouncer in transaction mode before 1.21).
WEBHOOK_PREPARED_INSERT = env.bool("WEBHOOK_PREPARED_INSERT", default=True)
# Failed webhook authentications allowed per client address and organization (or the local
# endpoint) in a window; past that the client gets 429 with Retry-After. 0 turns it off.
WEBHOOK_AUTH_FAILURE_LIMIT = env.int("WEBHOOK_AUTH_FAILURE_LIMIT", default=20)
WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS = env.int("WEBHOOK_AUTH_FAILURE_WINDOW_SECONDS", default=300)
# Trusted reverse proxies in front of the web processes: the client address is then taken
# from X-Forwarded-For, that many entries from the right. 0: REMOTE_ADDR.
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# --- Metrics (`/metrics`, Prometheus) -----------------------------------------------------
# A bearer token a Prometheus server scrapes with (`Authorization: Bearer <token>`); empty:
# only logged-in staff may read the figures.
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# Figures read from the database are cached this long per web process (0: every scrape).
METRICS_CACHE_SECONDS = env.float("METRICS_CACHE_SECONDS", default=5.0)
# Counters only a process knows (Jira calls and 429s per site) are kept by prometheus_client's
# multiprocess mode in this folder, shared by every web and worker process of the machine. It
# must be set before prometheus_client is first imported (settings load first) and emptied
# before the processes start (`make run` and bench/ do; see README, "Metrics").
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(VAR_DIR / "metrics"))
METRICS_DIR = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
METRICS_DIR.mkdir(parents=True, exist_ok=True)

# --- Celery -------------------------------------------------------------------------------
# The embedded default is kombu's filesystem transport: a real broker and a real worker
# process, with nothing to install. Production uses Redis or RabbitMQ.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Redis: a message taken by a worker that died is delivered again after this long.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=600),
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # kombu's transport, with each message written whole before a worker can see it.
    CELERY_BROKER_TRANSPORT = "syncapp.broker:Transport"
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,  # seconds between looks at the queue folder
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
# Celery's Django fixup closes every database connection before and after each task (a new
# connection per task, whatever CONN_MAX_AGE says) unless it may reuse them for this many
# tasks; then it closes them once every so many. Between, the worker closes only what Django
# would around a request: a connection CONN_MAX_AGE retired, or one an error left unusable
# (syncapp/celery.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=10_000)
# CONN_HEALTH_CHECKS costs a `SELECT 1` before each task's first query; a worker skips it on
# a connection its last task used less than this many seconds ago (0: always checks).
DB_HEALTH_CHECK_IDLE_SECONDS = env.float("DB_HEALTH_CHECK_IDLE_SECONDS", default=1.0)
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = False  # set per task, only on idempotent ones
# Publishing must not hang a web request when the broker is down: the inbox row is already
# committed and the sweeper sends it later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
CELERY_TASK_REJECT_ON_WORKER_LOST = True
# Fair queueing between tenants (each organization, and our own Jira): a delivery is queued
# on its tenant's bucket (`sync.local`, or `sync.org.<organization pk % buckets>`), and every
# worker consumes every bucket, taking from them in turn (kombu cycles the queues it consumes
# on Redis, RabbitMQ and the filesystem broker alike), so a flood from one partner waits
# behind itself, not in front of the others. `SYNC_FAIR_QUEUES=false` queues everything on
# one FIFO (the default queue), for comparison.
SYNC_FAIR_QUEUES = env.bool("SYNC_FAIR_QUEUES", default=True)
# Fewer on the filesystem broker: it lists its folder once per queue it looks at.
SYNC_QUEUE_BUCKETS = env.int(
    "SYNC_QUEUE_BUCKETS", default=4 if CELERY_BROKER_URL.startswith("filesystem://") else 16
)
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = [
    Queue(name, routing_key=name)
    for name in ["celery", "sync.local", *(f"sync.org.{n}" for n in range(SYNC_QUEUE_BUCKETS))]
]
SYNC_SWEEP_SECONDS = env.float("SYNC_SWEEP_SECONDS", default=30.0)
# Retention: finished deliveries (done, echo, ignored) and their sync events are deleted
# RETENTION_DAYS after they finished (0: never); failed, dead and unfinished ones stay until
# resolved. Beat prunes every RETENTION_PRUNE_SECONDS, RETENTION_BATCH_SIZE rows a
# transaction, at most RETENTION_MAX_BATCHES batches a run.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=30)
RETENTION_BATCH_SIZE = env.int("RETENTION_BATCH_SIZE", default=1000)
RETENTION_MAX_BATCHES = env.int("RETENTION_MAX_BATCHES", default=100)
RETENTION_PRUNE_SECONDS = env.float("RETENTION_PRUNE_SECONDS", default=3600.0)
# Reconciliation's drift check (sync/drift.py): every SYNC_DRIFT_CHECK_SECONDS, each
# organization's linked pairs are compared on both sites, SYNC_DRIFT_PAGE_SIZE pairs a search.
SYNC_DRIFT_CHECK_SECONDS = env.float("SYNC_DRIFT_CHECK_SECONDS", default=3600.0)
SYNC_DRIFT_PAGE_SIZE = env.int("SYNC_DRIFT_PAGE_SIZE", default=100)
# A pair changed more recently than this is left to its webhook (perhaps still on its way).
SYNC_DRIFT_GRACE_SECONDS = env.float("SYNC_DRIFT_GRACE_SECONDS", default=120.0)
# Reconciliation catch-up (README, "Reconciliation"): every SYNC_RECONCILE_SECONDS (0: off)
# each organization's sites are asked which issues changed since the last run, less
# SYNC_RECONCILE_OVERLAP_SECONDS (clock skew, search index lag); changes younger than
# SYNC_RECONCILE_GRACE_SECONDS are left to their webhook (the next run looks again). More
# than SYNC_RECONCILE_WARN_HEALED healed in 24 h is a warning: webhooks are being lost.
SYNC_RECONCILE_SECONDS = env.float("SYNC_RECONCILE_SECONDS", default=300.0)
SYNC_RECONCILE_OVERLAP_SECONDS = env.float("SYNC_RECONCILE_OVERLAP_SECONDS", default=600.0)
SYNC_RECONCILE_GRACE_SECONDS = env.float("SYNC_RECONCILE_GRACE_SECONDS", default=60.0)
SYNC_RECONCILE_WARN_HEALED = env.int("SYNC_RECONCILE_WARN_HEALED", default=3)
# A partner's API token with an expiry date is warned about this many days before it.
CREDENTIALS_EXPIRY_WARNING_DAYS = env.int("CREDENTIALS_EXPIRY_WARNING_DAYS", default=14)
CELERY_BEAT_SCHEDULE = {
    "sweep-deliveries": {
        "task": "webhooks.sweep_deliveries",
        "schedule": SYNC_SWEEP_SECONDS,
    },
    "sweep-outbox": {
        "task": "connections.sweep_outbox",
        "schedule": SYNC_SWEEP_SECONDS,
    },
    "prune-history": {
        "task": "webhooks.prune_history",
        "schedule": RETENTION_PRUNE_SECONDS,
    },
    "drift-check": {
        "task": "sync.drift_check",
        "schedule": SYNC_DRIFT_CHECK_SECONDS,
    },
}
if SYNC_RECONCILE_SECONDS > 0:
    CELERY_BEAT_SCHEDULE["reconcile-catch-up"] = {
        "task": "sync.reconcile_all",
        "schedule": SYNC_RECONCILE_SECONDS,
    }

# The cache holds the failed-authentication counters, shared by every web process: Redis when
# the broker is Redis (every machine), else files beside the embedded database (one machine).
CACHES = {
    "default": env.cache_url(
        "CACHE_URL",
        default=(
            CELERY_BROKER_URL
            if CELERY_BROKER_URL.startswith(("redis://", "rediss://"))
            else f"filecache://{VAR_DIR / 'cache'}"
        ),
    )
}
CACHES["default"]["KEY_PREFIX"] = env.str("CACHE_KEY_PREFIX", default="")
if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
    # The same cache, with its Redis clients reused (core/cache.py: cheaper per operation).
    CACHES["default"]["BACKEND"] = "core.cache.ReusedClientRedisCache"

# Sync retries: attempts per delivery, and the backoff between them.
SYNC_MAX_ATTEMPTS = env.int("SYNC_MAX_ATTEMPTS", default=8)
SYNC_RETRY_BASE_SECONDS = env.float("SYNC_RETRY_BASE_SECONDS", default=2.0)
SYNC_RETRY_MAX_SECONDS = env.float("SYNC_RETRY_MAX_SECONDS", default=300.0)
# A delivery still pending (never sent) or processing (its worker died) after this long is
# sent again by the sweeper.
SYNC_PENDING_STALE_SECONDS = env.int("SYNC_PENDING_STALE_SECONDS", default=30)
SYNC_PROCESSING_STALE_SECONDS = env.int("SYNC_PROCESSING_STALE_SECONDS", default=300)
# The relay (webhooks/relay.py, PostgreSQL only): a stored delivery is announced by a trigger
# (NOTIFY at commit) and sent to the queue by a thread of a worker, not by the web request.
# Off: the web request publishes it after its commit (SQLite, and Celery's eager mode).
SYNC_RELAY = env.bool(
    "SYNC_RELAY", default=DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
)
# How often a worker's relay on standby tries to take over from the one that sends.
SYNC_RELAY_STANDBY_SECONDS = env.float("SYNC_RELAY_STANDBY_SECONDS", default=3.0)
# How long one worker may hold an issue pair before another may take it over.
SYNC_LEASE_SECONDS = env.int("SYNC_LEASE_SECONDS", default=120)
# After a create got no answer, wait this long (Jira's search index lag) before looking for
# the issue it may have made.
SYNC_CREATE_SETTLE_SECONDS = env.float("SYNC_CREATE_SETTLE_SECONDS", default=15.0)
# Jira Software's Epic Link and Epic Name custom fields on Data Center sites (a standard
# issue's epic; an Epic's required name). Their ids differ per site: see /rest/api/2/field.
JIRA_EPIC_LINK_FIELD = env.str("JIRA_EPIC_LINK_FIELD", default="customfield_10100")
JIRA_EPIC_NAME_FIELD = env.str("JIRA_EPIC_NAME_FIELD", default="customfield_10101")

# --- REST framework -----------------------------------------------------------------------
REST_FRAMEWORK = {
    # Token first: an anonymous request is told how to authenticate (401, not 403).
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "core.authentication.ThrottledTokenAuthentication",
        "core.authentication.ThrottledBasicAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["core.permissions.IsStaffWithModelPermissions"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Proxies in front that append to X-Forwarded-For; 0 means the client address is
    # REMOTE_ADDR (a client-sent X-Forwarded-For is ignored, so throttles cannot be dodged).
    "NUM_PROXIES": NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Jira sync configuration API",
    "DESCRIPTION": "Partner organizations, their project and field mappings, and secrets.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Staff with view permission on organizations (what the schema describes).
    "SERVE_PERMISSIONS": ["ops.permissions.CanViewApiSchema"],
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Logging ------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "event": {"()": "core.logging.EventFormatter"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "event"},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # The development server's access log, through our formatter (which redacts secrets).
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
    },
}

# --- HTTPS (production behind TLS: see README, "Configuration") ---------------------------
SESSION_COOKIE_HTTPONLY = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
# Opt-in, only behind a proxy that sets (and strips from clients) the header, e.g.
# SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO,https
SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER", default=[])) or None
if SECURE_PROXY_SSL_HEADER is not None and len(SECURE_PROXY_SSL_HEADER) != 2:
    raise ImproperlyConfigured(
        "SECURE_PROXY_SSL_HEADER is 'HEADER,value', e.g. HTTP_X_FORWARDED_PROTO,https"
    )
