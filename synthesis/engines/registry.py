"""Which engines this installation runs, built from settings, and the worker's loaded models.

`PARLA_ENGINES` lists the enabled engines (operators enable XTTS and the transformers
engines once their weights are in `PARLA_MODEL_DIR`). Engines are constructed cheaply;
`loaded_engine()` loads one on first use and keeps at most `PARLA_LOADED_ENGINES_MAX` loaded
per process, unloading the least recently used.
"""

import logging
import os
import threading
from collections import OrderedDict
from contextlib import contextmanager
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from synthesis.engines.base import Engine, VoiceInfo
from synthesis.errors import EngineUnavailable, UnknownVoice

logger = logging.getLogger(__name__)

ENGINE_CLASSES = {
    "piper": "synthesis.engines.piper.PiperEngine",
    "kokoro": "synthesis.engines.kokoro.KokoroEngine",
    "xtts": "synthesis.engines.xtts.XttsEngine",
    "speecht5": "synthesis.engines.speecht5.SpeechT5Engine",
    "mms": "synthesis.engines.mms.MmsEngine",
    "bark": "synthesis.engines.bark.BarkEngine",
}
DEFAULT_ENGINE = "piper"


def resolve_device(requested: str) -> str:
    if requested != "auto":
        return requested
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


@cache
def _engines() -> dict[str, Engine]:
    device = resolve_device(settings.PARLA_DEVICE)
    engines = {}
    classes = {**ENGINE_CLASSES, **settings.PARLA_EXTRA_ENGINES}
    for name in settings.PARLA_ENGINES:
        if name not in classes:
            raise EngineUnavailable(f"Unknown engine {name!r} in PARLA_ENGINES.", extra={"engine": name})
        engine_class = import_string(classes[name])
        engines[name] = engine_class(
            model_dir=settings.PARLA_MODEL_DIR, device=device, threads=settings.PARLA_ENGINE_THREADS
        )
    return engines


def inference_concurrency() -> int:
    """How many inferences a process runs at once: PARLA_ENGINE_CONCURRENCY, or by default as
    many as the CPUs it may use can feed with PARLA_ENGINE_THREADS threads each (at least one)."""
    if settings.PARLA_ENGINE_CONCURRENCY > 0:
        return settings.PARLA_ENGINE_CONCURRENCY
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cpus // max(1, settings.PARLA_ENGINE_THREADS))


@cache
def _inference_slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(inference_concurrency())


@contextmanager
def inference_slot():
    """Hold one of the process's inference slots while an engine computes a chunk.

    A worker runs several jobs at once (threads), but more inferences than the CPUs can feed
    only slow every one of them down (their thread pools fight over the cores, and each
    misses its caches): four 0.2 s syntheses at once on two cores all finish after about
    0.8 s, while one after another they finish after 0.2, 0.4, 0.6 and 0.8 s, with the same
    throughput. Everything else a job does (cache hits, settling, storage) runs outside the
    slot."""
    with _inference_slots():
        yield


def engine_list() -> list[Engine]:
    return list(_engines().values())


def engine_get(name: str) -> Engine:
    engine = _engines().get(name)
    if engine is None:
        raise EngineUnavailable(
            f"The {name!r} engine is not enabled on this installation.",
            extra={"engine": name, "enabled": list(_engines())},
        )
    return engine


def catalog_voices() -> list[VoiceInfo]:
    voices: list[VoiceInfo] = []
    for engine in engine_list():
        voices.extend(engine.voices())
    return voices


def catalog_voice_get(voice_id: str) -> VoiceInfo:
    """A catalog voice by "<engine>:<voice>" id, or by its bare name if that is unambiguous."""
    engine_name, sep, _ = voice_id.partition(":")
    if sep and engine_name in ENGINE_CLASSES:
        engine_get(engine_name)  # A known engine that is not enabled here: say so.
    matches = [v for v in catalog_voices() if v.id == voice_id or (not sep and v.name == voice_id)]
    if len(matches) != 1:
        raise UnknownVoice(f"Unknown voice {voice_id!r}.", extra={"voice": voice_id})
    return matches[0]


class _LoadedEngines:
    """LRU of loaded engines in this process."""

    def __init__(self) -> None:
        self._order: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}

    def get(self, name: str) -> Engine:
        engine = engine_get(name)
        with self._lock:
            load_lock = self._load_locks.setdefault(name, threading.Lock())
        with load_lock:  # One thread loads; others wait for it instead of loading twice.
            if not engine.loaded:
                engine.load()
                logger.info("engine.loaded", extra={"engine": name})
        with self._lock:
            self._order[name] = engine
            self._order.move_to_end(name)
            while len(self._order) > settings.PARLA_LOADED_ENGINES_MAX:
                evicted_name, evicted = self._order.popitem(last=False)
                evicted.unload()
                logger.info("engine.unloaded", extra={"engine": evicted_name})
        return engine

    def names(self) -> list[str]:
        with self._lock:
            return list(self._order)

    def clear(self) -> None:
        with self._lock:
            for engine in self._order.values():
                engine.unload()
            self._order.clear()


_loaded = _LoadedEngines()


def loaded_engine(name: str) -> Engine:
    return _loaded.get(name)


def loaded_engine_names() -> list[str]:
    return _loaded.names()


def reset_engines() -> None:
    """Forget constructed and loaded engines (settings changed; tests)."""
    _loaded.clear()
    _engines.cache_clear()
