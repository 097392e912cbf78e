"""The one small interface every speech engine implements.

An engine is constructed cheaply from its settings (no model loaded), lists its voices,
loads its model on `load()` (workers keep loaded engines in an LRU, see loader.py) and turns
segments into audio chunk by chunk, so the first sentence can be streamed while the rest
is still being synthesized.
"""

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesis.errors import EngineUnavailable
from synthesis.types import AudioChunk, Segment


@dataclass(frozen=True)
class Licence:
    name: str
    commercial_use: bool
    url: str = ""


@dataclass(frozen=True)
class VoiceInfo:
    """A catalog voice. `id` is globally unique: "<engine>:<voice>"."""

    id: str
    engine: str
    name: str
    language: str  # BCP-47, e.g. "en-US"
    licence: Licence
    gender: str = ""
    description: str = ""
    sample_rate: int = 0


@dataclass(frozen=True)
class EngineInfo:
    name: str
    model_version: str
    languages: tuple[str, ...]
    sample_rate: int
    can_clone: bool
    needs_gpu: bool
    licence: Licence
    # Whether synthesize() honours `speed` natively (length scale) rather than needing
    # a time-stretch in the audio pipeline.
    native_speed: bool = False


@dataclass(frozen=True)
class SynthesisRequest:
    """What an engine needs beyond the segments."""

    voice: str  # the voice name within this engine (the part after "<engine>:")
    speed: float = 1.0  # 0.5–2.0; engines with native_speed apply it themselves
    # Speaker conditioning for cloning engines, or a style pack for matched voices:
    # a path to what the enrollment job stored beside the voice profile.
    conditioning_path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)


class Engine(ABC):
    """Base of every engine. Subclasses set `name` and implement the abstract methods."""

    name: str = ""
    # Characters a second at speed 1, read fast: the web tier's floor on a request's audio
    # length (synthesis.jobs.create). Piper and Kokoro read English at 13-19 here; a floor that
    # errs short never refuses a request that would have fitted.
    fast_reading_rate: float = 25.0

    def __init__(self, *, model_dir: Path, device: str = "cpu", threads: int = 1) -> None:
        self.model_dir = Path(model_dir)
        self.device = device
        self.threads = threads

    @property
    @abstractmethod
    def info(self) -> EngineInfo: ...

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """The catalog voices this engine offers here (cheap: no model load)."""

    @abstractmethod
    def load(self) -> None:
        """Load weights; raises EngineUnavailable naming the engine and folder if missing."""

    @property
    @abstractmethod
    def loaded(self) -> bool: ...

    def unload(self) -> None:  # noqa: B027  optional: an engine without a model in memory has nothing to drop
        """Drop the model so its memory can be reclaimed (LRU eviction)."""

    def model_version_for(self, voice: str) -> str:
        """What identifies the weights behind `voice`; part of the audio cache key."""
        return self.info.model_version

    @abstractmethod
    def synthesize(self, segments: Iterable[Segment], request: SynthesisRequest) -> Iterator[AudioChunk]:
        """Yield one AudioChunk per segment, in order, at `info.sample_rate`.

        Pauses (`segment.pause_after_ms`) and prosody are applied by the pipeline, not here,
        except `request.speed` for engines with `native_speed`.
        """

    # Helpers for subclasses -------------------------------------------------------------

    def catalog_voice(
        self,
        name: str,
        *,
        language: str,
        licence: Licence,
        description: str = "",
        gender: str = "",
        sample_rate: int = 0,
    ) -> VoiceInfo:
        return VoiceInfo(
            id=f"{self.name}:{name}",
            engine=self.name,
            name=name,
            language=language,
            licence=licence,
            gender=gender,
            description=description,
            sample_rate=sample_rate,
        )

    def require_dir(self, path: Path, what: str = "model") -> Path:
        if not path.is_dir():
            raise EngineUnavailable(
                f"The {self.name} engine's {what} folder {path} does not exist. Put the "
                f"{self.name} model files there (see the README's engine section).",
                extra={"engine": self.name, "path": str(path)},
            )
        return path

    def require_file(self, path: Path, what: str = "model file") -> Path:
        if not path.is_file():
            raise EngineUnavailable(
                f"The {self.name} engine's {what} {path} is missing.",
                extra={"engine": self.name, "path": str(path)},
            )
        return path
