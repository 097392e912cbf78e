"""The Dramatiq middleware that every worker process runs: presence, upkeep and log context.

A thread in each worker process refreshes its heartbeat (presence.py) every
PARLA_WORKER_HEARTBEAT_SECONDS, and every PARLA_MAINTENANCE_INTERVAL_SECONDS runs a round of
the upkeep the apps registered (upkeep.py) unless another worker is running one (a short
shared lock), so nothing needs an external scheduler.

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
from django.conf import settings
from django.db import close_old_connections

from config.logging import (
    log_context_bind,
    log_context_clear,
    message_log_fields,
    message_request_id_attach,
)
from config.runtime.presence import current_worker_id_set, worker_forget, worker_heartbeat, worker_info
from config.runtime.upkeep import upkeep_run_if_free

logger = logging.getLogger(__name__)


class WorkerPresence(dramatiq.Middleware):
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"

    def before_worker_boot(self, broker, worker) -> None:
        current_worker_id_set(self.worker_id)
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        self._queues = sorted(q for q in queues if not q.endswith((".DQ", ".XQ")))
        # Present before the first message is consumed, so no job this worker starts can
        # look orphaned to the upkeep (its own or another worker's).
        try:
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
        return worker_info({"queues": self._queues, "host": socket.gethostname(), "pid": os.getpid()})

    def _loop(self) -> None:
        interval = settings.PARLA_MAINTENANCE_INTERVAL_SECONDS
        last_upkeep = 0.0
        while not self._stop.is_set():
            try:
                worker_heartbeat(worker_id=self.worker_id, info=self._info())
                if time.monotonic() - last_upkeep >= interval:
                    last_upkeep = time.monotonic()
                    upkeep_run_if_free()
            except Exception:  # noqa: BLE001  the loop must survive a database or Redis blip
                logger.warning("worker_presence.loop_failed", exc_info=True)
            finally:
                close_old_connections()
            self._stop.wait(min(settings.PARLA_WORKER_HEARTBEAT_SECONDS, interval))
