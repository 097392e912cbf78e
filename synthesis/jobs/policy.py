"""How often and how long a job may run: read by the services and the actors alike."""

from django.conf import settings

# Attempts per job: the first run plus the actor's retries.
MAX_ATTEMPTS = 3
ACTOR_MAX_RETRIES = MAX_ATTEMPTS - 1
RETRY_MIN_BACKOFF_MS = 1_000
RETRY_MAX_BACKOFF_MS = 30_000
# The longest one synthesis job may run before its worker stops it (and retries it).
JOB_TIME_LIMIT_MS = settings.PARLA_JOB_TIME_LIMIT_SECONDS * 1000
