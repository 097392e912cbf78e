"""Shapes shared by the text front-end, the engines and the audio pipeline."""

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Prosody:
    """Relative prosody from SSML <prosody>/<emphasis>; 1.0 / 0.0 mean unchanged."""

    rate: float = 1.0  # 0.5–2.0, multiplies the request's speed
    pitch_semitones: float = 0.0  # -12..+12, added to the request's pitch
    volume_db: float = 0.0  # added to the request's volume


@dataclass(frozen=True)
class Segment:
    """One piece of speech: a sentence (or a clause of a long one) plus what follows it.

    `text` is already normalised (what the engine should say). `pause_after_ms` is silence
    to insert after it (SSML <break>, paragraph ends); `lang` is an SSML <lang> override.
    """

    text: str
    pause_after_ms: int = 0
    prosody: Prosody = field(default_factory=Prosody)
    lang: str | None = None
    # Index of the paragraph this segment belongs to (0-based); helps pause placement.
    paragraph: int = 0


@dataclass(frozen=True)
class AudioChunk:
    """Mono float32 samples in [-1, 1] at `sample_rate`, produced for one segment."""

    samples: np.ndarray
    sample_rate: int

    @property
    def duration_seconds(self) -> float:
        return len(self.samples) / self.sample_rate if self.sample_rate else 0.0
