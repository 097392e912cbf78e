"""Production: PostgreSQL, Redis (or RabbitMQ), workers as separate processes."""

from django.core.exceptions import ImproperlyConfigured

from config.logging import logging_config

from .base import *  # noqa: F403
from .base import DATABASES, REDIS_URL, env

SECRET_KEY = env("DJANGO_SECRET_KEY")
# The placeholders of .env.example and docker/parla.env.example (tests/test_settings.py checks
# this list against both files): a published key signs anyone's sessions and reset links.
EXAMPLE_SECRET_KEYS = frozenset({
    "change-me-to-50-random-characters",
    "replace-me-with-a-long-random-string",
})
if SECRET_KEY.strip() in EXAMPLE_SECRET_KEYS or SECRET_KEY.strip().lower().startswith(("replace-me", "change-me")):
    raise ImproperlyConfigured(
        "DJANGO_SECRET_KEY is the example value from the repository; set a long random one, e.g. "
        "python -c \"import secrets; print(secrets.token_urlsafe(50))\"."
    )
DEBUG = env.bool("DJANGO_DEBUG", default=False)
if DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production.")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    raise ImproperlyConfigured("Production needs DATABASE_URL (PostgreSQL).")
if not REDIS_URL:
    # Redis holds the shared cache, rate-limit windows and stream chunks even when the
    # broker is RabbitMQ.
    raise ImproperlyConfigured("Production needs REDIS_URL.")

PARLA_EMBEDDED_WORKER = False

# --- Security: TLS terminates at the proxy in front of gunicorn ---------------------------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Load balancers probe /health over plain HTTP inside the private network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# One JSON object per line on stdout, for the log shipper (PARLA_LOG_FORMAT=plain for text).
PARLA_LOG_FORMAT = env("PARLA_LOG_FORMAT", default="json")
LOGGING = logging_config(log_format=PARLA_LOG_FORMAT, level=env("PARLA_LOG_LEVEL", default="INFO"))
