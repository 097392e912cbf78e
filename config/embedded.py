"""Embedded mode: a per-installation secret key and a Dramatiq worker in the web process."""

import logging
import secrets
import threading
from pathlib import Path

logger = logging.getLogger(__name__)

_worker = None
_worker_lock = threading.Lock()


def local_secret_key(var_dir: Path) -> str:
    var_dir = Path(var_dir)
    var_dir.mkdir(parents=True, exist_ok=True)
    key_file = var_dir / "secret_key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    return key_file.read_text().strip()


def start_embedded_worker(*, threads: int):
    """Start one in-process worker on the configured (in-memory) broker, once."""
    global _worker
    with _worker_lock:
        if _worker is not None:
            return _worker
        import dramatiq
        from django.conf import settings
        from dramatiq import Worker

        broker = dramatiq.get_broker()
        _worker = Worker(broker, worker_threads=threads, worker_timeout=settings.PARLA_WORKER_POLL_MS)
        _worker.start()
        logger.info(
            "embedded_worker.started",
            extra={"queues": sorted(broker.get_declared_queues()), "threads": threads},
        )
        return _worker


def embedded_worker_running() -> bool:
    return _worker is not None and all(t.is_alive() for t in _worker.workers)


def stop_embedded_worker() -> None:
    global _worker
    with _worker_lock:
        if _worker is not None:
            _worker.stop()
            _worker = None
