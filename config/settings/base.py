"""Settings shared by every mode.

With no environment configured Parla runs embedded: SQLite under var/, media under
var/media/, a local-memory cache and a Dramatiq worker inside the web process on an
in-memory broker. DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

import ipaddress
import os
from pathlib import Path

from config.env import BASE_DIR, env
from config.logging import logging_config

VAR_DIR = Path(env("PARLA_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "django_dramatiq",
    # Declares Parla's queues and the broker-wide limits on the broker django_dramatiq built.
    "config.runtime.apps.RuntimeConfig",
    "tenants.apps.TenantsConfig",
    "voices.apps.VoicesConfig",
    "synthesis.apps.SynthesisConfig",
    "batches.apps.BatchesConfig",
    "analytics.apps.AnalyticsConfig",
]

MIDDLEWARE = [
    # First: a request id and log context for everything below, and request metrics.
    "config.request_context.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "tenants.dashboard.dashboard_context",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
    DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DJANGO_CONN_MAX_AGE", default=60))
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / "parla.sqlite3",
            "OPTIONS": {
                # WAL lets the web process and a second terminal (createtenant) share the
                # file; IMMEDIATE makes writers queue instead of failing on lock upgrades.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DATABASES["default"]["ATOMIC_REQUESTS"] = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: cache, rate limits, broker --------------------------------------------------
REDIS_URL = env("REDIS_URL", default="")
EMBEDDED = not REDIS_URL and not env("RABBITMQ_URL", default="")

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": env("REDIS_CACHE_URL", default=REDIS_URL),
            "KEY_PREFIX": env("PARLA_CACHE_KEY_PREFIX", default="parla"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# django-ratelimit (operator login) needs an atomic shared counter. Django's own RedisCache
# increments with Redis INCR, which is atomic, though that package's check lists only
# django-redis as "officially supported".
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

from config.runtime.broker import dramatiq_broker_settings  # noqa: E402

DRAMATIQ_BROKER = dramatiq_broker_settings(
    redis_url=REDIS_URL, rabbitmq_url=env("RABBITMQ_URL", default="")
)
DRAMATIQ_TASKS_DATABASE = False
DRAMATIQ_AUTODISCOVER_MODULES = ["tasks.actors"]
# Embedded mode runs a worker thread pool inside the web process.
PARLA_EMBEDDED_WORKER = env.bool("PARLA_EMBEDDED_WORKER", default=EMBEDDED)
PARLA_EMBEDDED_WORKER_THREADS = env.int("PARLA_EMBEDDED_WORKER_THREADS", default=2)
# The longest an idle worker waits before looking at its queues anyway. New messages wake
# idle workers at once (config.runtime.broker); this bounds the wait for messages put back on a
# queue by recovery. The worker command's child processes read it from their environment.
PARLA_WORKER_POLL_MS = env.int("PARLA_WORKER_POLL_MS", default=1000)
os.environ.setdefault("dramatiq_worker_timeout", str(PARLA_WORKER_POLL_MS))

# --- Auth -------------------------------------------------------------------------------
AUTH_USER_MODEL = "tenants.User"
# Dashboard sign-in (operators use /admin/, which has its own login page).
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
# Password-reset and invitation links work for three days.
PASSWORD_RESET_TIMEOUT = 3 * 24 * 3600
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Email (password resets, invitations) ------------------------------------------------
# EMAIL_URL: "smtp+tls://user:password@smtp.example.com:587"; the default prints mails to the console.
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
DEFAULT_FROM_EMAIL = env("DJANGO_DEFAULT_FROM_EMAIL", default="Parla <no-reply@parla.local>")

# --- I18N / time ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static and media -------------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = Path(env("PARLA_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env("PARLA_MEDIA_ROOT", default=str(VAR_DIR / "media")))

USE_S3 = env.bool("USE_S3", default=False)
if USE_S3:
    _default_storage = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": env("AWS_STORAGE_BUCKET_NAME"),
            "region_name": env("AWS_S3_REGION_NAME", default=None),
            "endpoint_url": env("AWS_S3_ENDPOINT_URL", default=None),
            "access_key": env("AWS_ACCESS_KEY_ID", default=None),
            "secret_key": env("AWS_SECRET_ACCESS_KEY", default=None),
            "default_acl": None,
            "querystring_auth": True,
            "file_overwrite": True,
        },
    }
else:
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# --- REST framework ---------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "tenants.authentication.ApiKeyAuthentication",
        "tenants.authentication.TenantSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "rest_framework.parsers.JSONParser",
        "rest_framework.parsers.MultiPartParser",
        "rest_framework.parsers.FormParser",
    ],
    "EXCEPTION_HANDLER": "tenants.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Parla API",
    "DESCRIPTION": "Multi-tenant text-to-speech. Authenticate with `Authorization: Bearer <key>` "
    "or `X-API-Key: <key>`. Every error has the shape `{code, message, extra}`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["tenants.api.schema.strip_trailing_slashes"],
    # Several models have a "status" with its own choices: name each enum after its model.
    "ENUM_NAME_OVERRIDES": {
        "JobStatusEnum": "synthesis.models.SynthesisJob.Status",
        "BatchStatusEnum": "batches.models.Batch.Status",
        "WebhookDeliveryStatusEnum": "batches.models.WebhookDelivery.Status",
        "VoiceStatusEnum": "voices.models.VoiceProfile.Status",
        "TenantStatusEnum": "tenants.models.Tenant.Status",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "tenants.api.schema.document_errors",
    ],
    # Swagger UI and Redoc assets are served from the installed sidecar package, not a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Parla ------------------------------------------------------------------------------
# Weights come only from PARLA_MODEL_DIR: the Hugging Face libraries must never try a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# Model weights an operator provides (XTTS, SpeechT5, MMS, Bark, extra Piper voices).
PARLA_MODEL_DIR = Path(env("PARLA_MODEL_DIR", default=str(VAR_DIR / "models")))
# Engines this installation offers. XTTS, SpeechT5, MMS and Bark need weights in
# PARLA_MODEL_DIR (and the engines extra); Piper and Kokoro work out of the box.
PARLA_ENGINES = env.list("PARLA_ENGINES", default=["piper", "kokoro"])
# Engines of your own: "name=package.module.EngineClass,..." (then list the name in PARLA_ENGINES).
PARLA_EXTRA_ENGINES = env.dict("PARLA_EXTRA_ENGINES", default={})
PARLA_DEVICE = env("PARLA_DEVICE", default="auto")  # auto, cpu or cuda
PARLA_ENGINE_THREADS = env.int("PARLA_ENGINE_THREADS", default=2)
# Job transactions commit without waiting for the WAL flush (see synthesis.jobs.commits.job_transaction).
PARLA_ASYNC_JOB_COMMITS = env.bool("PARLA_ASYNC_JOB_COMMITS", default=True)
# Inferences a process runs at once (synthesis.engines.registry.inference_slot); 0: CPUs // threads.
PARLA_ENGINE_CONCURRENCY = env.int("PARLA_ENGINE_CONCURRENCY", default=0)
PARLA_LOADED_ENGINES_MAX = env.int("PARLA_LOADED_ENGINES_MAX", default=3)
# Syntheses a matched voice's pack search may spend (about 5 s each on 2 cores).
PARLA_MATCH_EVALUATIONS = env.int("PARLA_MATCH_EVALUATIONS", default=100)
PARLA_DEFAULT_PLAN = env("PARLA_DEFAULT_PLAN", default="starter")
# Keys are looked up by their visible prefix; the secret part is compared by hash.
PARLA_API_KEY_PREFIX = "prl_"
# How often last_used_at is written at most, so hot keys do not write on every request.
PARLA_API_KEY_TOUCH_SECONDS = env.int("PARLA_API_KEY_TOUCH_SECONDS", default=60)
# Reservations still held after this long belong to work that died; they are released.
PARLA_RESERVATION_TTL_SECONDS = env.int("PARLA_RESERVATION_TTL_SECONDS", default=6 * 3600)
PARLA_HEALTH_WORKER_TIMEOUT_SECONDS = env.float("PARLA_HEALTH_WORKER_TIMEOUT_SECONDS", default=5.0)
# The voice used when a request names none, and for `fallback: true`.
PARLA_DEFAULT_VOICE = env("PARLA_DEFAULT_VOICE", default="piper:en_US-joe-medium")
# How long POST /api/v1/speech waits for its job before answering 202 with the job.
PARLA_SYNC_WAIT_SECONDS = env.float("PARLA_SYNC_WAIT_SECONDS", default=60.0)
# A stream that receives nothing from its worker for this long is ended.
PARLA_STREAM_IDLE_SECONDS = env.float("PARLA_STREAM_IDLE_SECONDS", default=60.0)
# Queued jobs untouched for this long are enqueued again (their message may be lost).
PARLA_JOB_REQUEUE_SECONDS = env.int("PARLA_JOB_REQUEUE_SECONDS", default=15 * 60)
# The longest one synthesis job may run before its worker stops it (and retries it).
PARLA_JOB_TIME_LIMIT_SECONDS = env.int("PARLA_JOB_TIME_LIMIT_SECONDS", default=10 * 60)
# A job during which its worker process died this many times (out of memory, a crash in native
# code, a kill) is failed and refunded: it may be what kills them. Once is enough in embedded
# mode, whose worker is the web server: no request may bring the server down twice.
PARLA_JOB_WORKER_DEATHS = env.int("PARLA_JOB_WORKER_DEATHS", default=1 if PARLA_EMBEDDED_WORKER else 2)
# A file job whose engine audio passes this many seconds is rendered through files on disk, a
# piece at a time (synthesis.audio.long), so a worker's memory stays bounded at any length.
PARLA_LONG_RENDER_SECONDS = env.float("PARLA_LONG_RENDER_SECONDS", default=300.0)
# Workers refresh their presence this often; one silent for three times as long is gone and
# its running jobs are taken over.
PARLA_WORKER_HEARTBEAT_SECONDS = env.float("PARLA_WORKER_HEARTBEAT_SECONDS", default=10.0)
# How often each worker runs the upkeep (recovery of lost jobs, stale holds); one at a time.
PARLA_MAINTENANCE_INTERVAL_SECONDS = env.int("PARLA_MAINTENANCE_INTERVAL_SECONDS", default=60)
# Webhook receivers on loopback or private networks (tests, intranets) need this switched on.
# Link-local addresses (the cloud metadata service) and 0.0.0.0 stay refused either way.
PARLA_WEBHOOK_ALLOW_PRIVATE = env.bool("PARLA_WEBHOOK_ALLOW_PRIVATE", default=False)
# Ports webhook receivers may listen on besides 80 and 443 (tenants/outbound.py).
PARLA_WEBHOOK_ALLOWED_PORTS = []
for _port in env.list("PARLA_WEBHOOK_ALLOWED_PORTS", default=[]):
    if not (_port.strip().isdigit() and 0 < int(_port) < 65536):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(f"PARLA_WEBHOOK_ALLOWED_PORTS: {_port!r} is not a TCP port (1-65535).")
    PARLA_WEBHOOK_ALLOWED_PORTS.append(int(_port))
# Ledger rows are added to the daily rollups this long after a job finishes, one run per tenant
# per window; negative: only by the workers' upkeep and `manage.py usage_rollup`.
PARLA_USAGE_ROLLUP_DELAY_SECONDS = env.float("PARLA_USAGE_ROLLUP_DELAY_SECONDS", default=5.0)
PARLA_IDEMPOTENCY_TTL_SECONDS = env.int("PARLA_IDEMPOTENCY_TTL_SECONDS", default=24 * 3600)
# OpenAI voice names on /v1/audio/speech → catalog voices ("alloy=kokoro:jf_alpha,...");
# names not listed speak with PARLA_DEFAULT_VOICE.
PARLA_OPENAI_VOICES = env.dict("PARLA_OPENAI_VOICES", default={})
# Who may read /metrics (config/metrics.py): clients sending `Authorization: Bearer <token>`
# and/or clients in these networks (CIDRs). Neither set: loopback only; a token and no
# networks: any address with the token.
PARLA_METRICS_TOKEN = env("PARLA_METRICS_TOKEN", default="")
PARLA_METRICS_ALLOWED_NETWORKS = [
    ipaddress.ip_network(value, strict=False)
    for value in env.list("PARLA_METRICS_ALLOWED_NETWORKS", default=[])
]
# Proxies (CIDRs) whose X-Forwarded-For names the client (config/client_address.py): sign-in
# limits, audit events, /metrics and /health?deep=1 use that address. Empty: REMOTE_ADDR is the
# client and the header is ignored. List only proxies you run; a client can write the header.
PARLA_TRUSTED_PROXIES = [
    ipaddress.ip_network(value, strict=False)
    for value in env.list("PARLA_TRUSTED_PROXIES", default=[])
]
# django-ratelimit's key="ip" counts per client address, not per proxy.
RATELIMIT_IP_META_KEY = "config.client_address.ratelimit_client_ip"
# How long an invitation to a workspace can be accepted.
PARLA_INVITATION_DAYS = env.int("PARLA_INVITATION_DAYS", default=7)

# --- Logging ----------------------------------------------------------------------------
# Lines on stdout carry request_id and tenant_id (config/logging.py). "plain" reads well in a
# terminal; "json" (one object per line, production's default) suits log shippers.
PARLA_LOG_FORMAT = env("PARLA_LOG_FORMAT", default="plain")
LOGGING = logging_config(log_format=PARLA_LOG_FORMAT, level=env("PARLA_LOG_LEVEL", default="INFO"))
