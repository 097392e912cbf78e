"""Embedded mode and local development: no services needed."""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

SECRET_KEY = env("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    # A per-installation key kept under var/, so sessions survive restarts without any
    # configuration and no key is shared between installations.
    from config.embedded import local_secret_key

    SECRET_KEY = local_secret_key(VAR_DIR)

# A single process serves and works in embedded mode, so a process-local cache is shared
# by everything that rate-limits.
SILENCED_SYSTEM_CHECKS = [*SILENCED_SYSTEM_CHECKS, "django_ratelimit.E003"]  # noqa: F405
