"""Worker presence and upkeep, run by a thread in every worker process.

Each worker process refreshes a heartbeat (queues it consumes, engines it has loaded, CPU
or GPU) every few seconds; the web tier reads them to tell a tenant that no GPU worker is
running, and /api/v1/engines to say which engines are loaded. Every
PARLA_MAINTENANCE_INTERVAL_SECONDS each worker also runs the upkeep of maintenance.py unless
another is running it (a short shared lock), so nothing needs an external scheduler.

It also ties log lines to the work: a message sent while a request is handled carries that
request's id, and while a worker processes a message its lines carry the request id and the
ids among the actor's arguments (tenant_id, job_id, ...); see config.logging.
"""

import logging
import os
import socket
import threading
import time

import dramatiq

from config.logging import (
    log_context_bind,
    log_context_clear,
    message_log_fields,
    message_request_id_attach,
)

logger = logging.getLogger(__name__)

# Held while one worker runs the upkeep, so two never run it at once.
MAINTENANCE_LOCK_SECONDS = 20

# This process's worker id once a worker has booted in it (jobs record who runs them).
current_worker_id = ""


class WorkerPresence(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def before_worker_boot(self, broker, worker) -> None:
        global current_worker_id
        current_worker_id = self.worker_id
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        self._queues = sorted(q for q in queues if not q.endswith((".DQ", ".XQ")))
        # Present before the first message is consumed, so no job this worker starts can
        # look orphaned to the upkeep (its own or another worker's).
        try:
            from synthesis.live import worker_heartbeat

            worker_heartbeat(worker_id=self.worker_id, info=self._info())
        except Exception:  # noqa: BLE001  the loop below retries
            logger.warning("worker_presence.first_heartbeat_failed", exc_info=True)

    def after_worker_boot(self, broker, worker) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="parla-presence", daemon=True)
        self._thread.start()

    def before_worker_shutdown(self, broker, worker) -> None:
        self._stop.set()
        try:
            from synthesis.live import worker_forget

            worker_forget(worker_id=self.worker_id)
        except Exception:  # noqa: BLE001  shutting down: presence simply expires
            logger.warning("worker_presence.forget_failed", exc_info=True)

    def before_enqueue(self, broker, message, delay) -> None:
        message_request_id_attach(message)

    def before_process_message(self, broker, message) -> None:
        log_context_clear()
        try:
            log_context_bind(**message_log_fields(broker, message))
        except Exception:  # noqa: BLE001  a log context is never worth failing a job for
            logger.warning("worker_presence.log_context_failed", exc_info=True)

    def after_process_message(self, broker, message, *, result=None, exception=None) -> None:
        log_context_clear()

    def after_skip_message(self, broker, message) -> None:
        log_context_clear()

    def _info(self) -> dict:
        from django.conf import settings

        from synthesis.engines.registry import loaded_engine_names, resolve_device

        return {
            "queues": self._queues,
            "engines_loaded": loaded_engine_names(),
            "device": resolve_device(settings.PARLA_DEVICE),
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    def _loop(self) -> None:
        from django.conf import settings
        from django.db import close_old_connections

        from synthesis.live import maintenance_lock, worker_heartbeat

        interval = settings.PARLA_MAINTENANCE_INTERVAL_SECONDS
        last_maintenance = 0.0
        while not self._stop.is_set():
            try:
                worker_heartbeat(worker_id=self.worker_id, info=self._info())
                if time.monotonic() - last_maintenance >= interval:
                    last_maintenance = time.monotonic()
                    if maintenance_lock(name="maintenance", seconds=MAINTENANCE_LOCK_SECONDS):
                        from synthesis.maintenance import maintenance_run_all_tenants

                        maintenance_run_all_tenants()
            except Exception:  # noqa: BLE001  the loop must survive a database or Redis blip
                logger.warning("worker_presence.loop_failed", exc_info=True)
            finally:
                close_old_connections()
            self._stop.wait(min(settings.PARLA_WORKER_HEARTBEAT_SECONDS, interval))
