"""Tests run against PostgreSQL and Redis at their local default addresses."""

import os
import tempfile
import uuid

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/parla")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
# One prefix per test session keeps rate-limit counters of earlier runs out of the way.
os.environ.setdefault("PARLA_CACHE_KEY_PREFIX", f"parla-test-{uuid.uuid4().hex[:8]}")
os.environ.setdefault("PARLA_VAR_DIR", tempfile.mkdtemp(prefix="parla-test-var-"))
# Worker processes started by tests roll usage up only when a test asks for it: a rollup
# transaction racing the end of another test's table flush can deadlock that flush.
os.environ.setdefault("PARLA_USAGE_ROLLUP_DELAY_SECONDS", "-1")

from .base import *  # noqa: E402, F403
from .base import env  # noqa: E402

SECRET_KEY = env("DJANGO_SECRET_KEY", default="test-only-secret-key-not-for-production-use-0123456789")
DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
ALLOWED_HOSTS = ["*"]
STORAGES["staticfiles"] = {  # noqa: F405
    "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
}
# The test broker is the real Redis broker; tests that only need an actor's body call it
# directly.
PARLA_EMBEDDED_WORKER = False
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  whitenoise warns on a missing root
