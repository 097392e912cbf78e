"""Plumbing shared by the engines whose model is a torch module: XTTS and the transformers
engines (SpeechT5, MMS-TTS, Bark).

Weights are operator-provided, one folder per engine under `<model dir>/`; the transformers
engines load them with `from_pretrained(<local folder>, local_files_only=True)`, so nothing is
ever downloaded. torch and transformers are imported inside load(), so `info` and `voices()`
work on hosts without the engines extra.
"""

import gc
import threading
from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from synthesis.engines.base import Engine
from synthesis.errors import EngineUnavailable


def import_torch(engine: str):
    try:
        import torch
    except ImportError as error:
        raise EngineUnavailable(
            f"The {engine} engine needs torch: install Parla's engines extra "
            "(pip install '.[engines]').",
            extra={"engine": engine},
        ) from error
    return torch


def as_mono_float32(samples: Any) -> np.ndarray:
    """Model output (tensor or array, any batch shape of one item) as clipped mono float32."""
    if hasattr(samples, "detach"):
        samples = samples.detach().float().cpu().numpy()
    array = np.asarray(samples, dtype=np.float32).reshape(-1)
    return np.clip(np.nan_to_num(array), -1.0, 1.0)


class TorchEngine(Engine):
    """An engine whose model is a torch module loaded from `<model dir>/<folder_name>/`.

    Subclasses implement `_load_model(torch)`; `model` loads on first use, so a worker that
    calls synthesize() on an engine the LRU evicted gets it back instead of an error.
    """

    folder_name = ""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._model: Any = None
        self._lock = threading.RLock()

    @property
    def folder(self) -> Path:
        return self.model_dir / self.folder_name

    @property
    def torch_device(self) -> str:
        """`device` as torch spells it ("cuda", "cuda:1", "cpu"); the registry resolves "auto"."""
        if self.device == "gpu":
            return "cuda"
        return self.device if self.device.startswith("cuda") else "cpu"

    @abstractmethod
    def _load_model(self, torch) -> Any: ...

    def load(self) -> None:
        with self._lock:
            if self._model is not None:
                return
            self.require_dir(self.folder)
            torch = import_torch(self.name)
            # NOTE: process-wide, so every engine in a worker uses PARLA_ENGINE_THREADS.
            torch.set_num_threads(max(1, self.threads))
            self._model = self._load_model(torch)

    @property
    def loaded(self) -> bool:
        return self._model is not None

    @property
    def model(self) -> Any:
        if self._model is None:
            self.load()
        return self._model

    def unload(self) -> None:
        with self._lock:
            self._model = None
        gc.collect()
        try:
            import torch
        except ImportError:
            return
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _from_pretrained(self, model_class, path: Path, **kwargs):
        self.require_dir(path)
        try:
            return model_class.from_pretrained(str(path), local_files_only=True, **kwargs)
        except (OSError, ValueError, ImportError) as error:
            # A folder missing its files reads as "couldn't connect to the Hub"; a missing
            # tokenizer backend (sentencepiece for SpeechT5) as an ImportError.
            raise EngineUnavailable(
                f"The {self.name} engine could not load {model_class.__name__} from {path}: "
                f"{error}",
                extra={"engine": self.name, "path": str(path)},
            ) from error
