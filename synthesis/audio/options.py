"""What the caller asked the audio to sound like and be delivered as.

`AudioOptions` validates itself on construction, so an instance is always usable;
`AudioOptions.from_request()` turns untrusted JSON-ish input into one, reporting every bad
field at once as InvalidAudioOptions(extra={"fields": {name: [message]}}).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from synthesis.errors import InvalidAudioOptions

FORMATS: tuple[str, ...] = ("wav", "flac", "mp3", "opus", "ogg", "m4a", "pcm")
LOSSY_FORMATS = frozenset({"mp3", "opus", "ogg", "m4a"})
# Formats StreamEncoder can produce incrementally. FLAC and M4A need a seekable output
# (their headers are rewritten at the end), so they are file-only.
STREAMABLE_FORMATS = frozenset({"wav", "pcm", "mp3", "opus", "ogg"})
WAV_SUBTYPES: tuple[str, ...] = ("pcm_16", "pcm_24", "float")
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
# libopus only runs at these rates (it encodes at 48 kHz internally either way).
OPUS_SAMPLE_RATES: tuple[int, ...] = (8000, 12000, 16000, 24000, 48000)

BITRATE_RANGE_KBPS = (64, 320)
DEFAULT_BITRATE_KBPS = 128
DEFAULT_OPUS_BITRATE_KBPS = 64
SPEED_RANGE = (0.5, 2.0)
PITCH_RANGE_SEMITONES = (-12.0, 12.0)
VOLUME_RANGE_DB = (-30.0, 20.0)
LOUDNESS_RANGE_LUFS = (-40.0, -5.0)
TRUE_PEAK_RANGE_DBTP = (-9.0, 0.0)

_CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "ogg": "audio/ogg; codecs=vorbis",
    "m4a": "audio/mp4",
    # NOTE: not audio/L16, which is big-endian by definition (RFC 2586); ours is s16le.
    # Raw PCM has no header, so the parameters carry the layout.
    "pcm": "audio/pcm",
}
_EXTENSIONS = {
    "wav": "wav",
    "flac": "flac",
    "mp3": "mp3",
    "opus": "opus",
    "ogg": "ogg",
    "m4a": "m4a",
    "pcm": "pcm",
}


def content_type(format: str, *, sample_rate: int | None = None, channels: int = 1) -> str:
    """MIME type for `format`. For raw PCM, pass the rate and channels so players can decode."""
    try:
        base = _CONTENT_TYPES[format]
    except KeyError:
        raise ValueError(f"unknown audio format {format!r}") from None
    if format == "pcm" and sample_rate:
        return f"{base}; rate={sample_rate}; channels={channels}; encoding=s16le"
    return base


def file_extension(format: str) -> str:
    """File extension (no dot) for `format`."""
    try:
        return _EXTENSIONS[format]
    except KeyError:
        raise ValueError(f"unknown audio format {format!r}") from None


def opus_sample_rate(sample_rate: int) -> int:
    """The lowest rate libopus accepts at or above `sample_rate` (22050 → 24000, 44100 → 48000).

    Going up never loses bandwidth, and it is what ffmpeg would pick on its own.
    """
    return next((rate for rate in OPUS_SAMPLE_RATES if rate >= sample_rate), OPUS_SAMPLE_RATES[-1])


@dataclass(frozen=True)
class AudioOptions:
    """Output format and sound of a synthesis result.

    - sample_rate None keeps the engine's rate. Opus only runs at 8/12/16/24/48 kHz, so for
      "opus" any other rate (22050, 44100, or an engine rate) is raised to the next rate Opus
      accepts; `output_sample_rate()` says which rate the file will really have.
    - bitrate_kbps None means the codec default (64 for opus, 128 otherwise); it is only
      accepted for lossy formats. Codecs cap it where they must (see encode.py).
    - loudness_lufs None leaves loudness alone; a value normalises the whole file to that
      integrated loudness (EBU R128 / ITU-R BS.1770) before `volume_db` is added on top.
    - true_peak_dbtp is a ceiling enforced by a true-peak limiter whenever the signal
      exceeds it (after loudness and volume gain).
    """

    format: str = "wav"
    wav_subtype: str = "pcm_16"
    sample_rate: int | None = None
    channels: int = 1
    bitrate_kbps: int | None = None
    speed: float = 1.0
    pitch_semitones: float = 0.0
    volume_db: float = 0.0
    loudness_lufs: float | None = None
    true_peak_dbtp: float = -1.0
    trim_silence: bool = True

    FIELD_NAMES: ClassVar[frozenset[str]]

    def __post_init__(self) -> None:
        errors = _validate(self)
        if errors:
            raise _invalid(errors)

    @classmethod
    def from_request(
        cls, data: Mapping[str, Any] | None, *, allow_unknown: bool = False
    ) -> AudioOptions:
        """Build options from user input (parsed JSON), reporting all bad fields at once.

        Numbers must arrive as JSON numbers: "1.5" is a validation error, never a 500.
        Format and subtype names are case-insensitive. Unknown keys are rejected unless
        `allow_unknown` (then they are ignored, for callers that pass a whole request body).
        """
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise InvalidAudioOptions(
                "Audio options must be an object.",
                extra={"fields": {"non_field_errors": ["Expected an object."]}},
            )
        errors: dict[str, list[str]] = {}
        values: dict[str, Any] = {}
        for name, raw in data.items():
            if name not in cls.FIELD_NAMES:
                if not allow_unknown:
                    errors.setdefault(str(name), []).append("Unknown audio option.")
                continue
            if raw is None:
                # null switches off what can be off (loudness, resampling); elsewhere it
                # means "use the default".
                if name in _NULLABLE:
                    values[name] = None
                continue
            coerced, error = _COERCERS[name](raw)
            if error:
                errors.setdefault(name, []).append(error)
            else:
                values[name] = coerced
        if errors:
            raise _invalid(errors)
        return cls(**values)

    @property
    def effective_bitrate_kbps(self) -> int | None:
        """Requested bitrate, or the codec default; None for lossless/raw formats."""
        if self.format not in LOSSY_FORMATS:
            return None
        if self.bitrate_kbps is not None:
            return self.bitrate_kbps
        return DEFAULT_OPUS_BITRATE_KBPS if self.format == "opus" else DEFAULT_BITRATE_KBPS

    @property
    def content_type(self) -> str:
        return content_type(self.format, sample_rate=self.sample_rate, channels=self.channels)

    @property
    def file_extension(self) -> str:
        return file_extension(self.format)

    @property
    def streamable(self) -> bool:
        return self.format in STREAMABLE_FORMATS

    def output_sample_rate(self, input_sample_rate: int) -> int:
        """The rate the delivered audio will have for audio arriving at `input_sample_rate`."""
        rate = self.sample_rate or input_sample_rate
        if self.format == "opus" and rate not in OPUS_SAMPLE_RATES:
            return opus_sample_rate(rate)
        return rate

    def replace(self, **changes: Any) -> AudioOptions:
        return dataclasses.replace(self, **changes)


AudioOptions.FIELD_NAMES = frozenset(field.name for field in dataclasses.fields(AudioOptions))
_NULLABLE = frozenset({"sample_rate", "bitrate_kbps", "loudness_lufs"})


def _invalid(errors: dict[str, list[str]]) -> InvalidAudioOptions:
    first_field, messages = next(iter(errors.items()))
    return InvalidAudioOptions(f"{first_field}: {messages[0]}", extra={"fields": errors})


def _is_number(value: Any) -> bool:
    # bool is an int subclass; `true` is not a speed.
    return isinstance(value, int | float) and not isinstance(value, bool)


def _in_range(value: float, bounds: tuple[float, float]) -> bool:
    return math.isfinite(value) and bounds[0] <= value <= bounds[1]


def _validate(options: AudioOptions) -> dict[str, list[str]]:
    """Check every field of an (already typed) AudioOptions; return {field: [message]}."""
    errors: dict[str, list[str]] = {}

    def fail(name: str, message: str) -> None:
        errors.setdefault(name, []).append(message)

    if options.format not in FORMATS:
        fail("format", f"Must be one of: {', '.join(FORMATS)}.")
    if options.wav_subtype not in WAV_SUBTYPES:
        fail("wav_subtype", f"Must be one of: {', '.join(WAV_SUBTYPES)}.")
    elif options.wav_subtype != "pcm_16" and options.format != "wav":
        fail("wav_subtype", "Only applies to the wav format.")
    if options.sample_rate is not None and (
        not isinstance(options.sample_rate, int)
        or isinstance(options.sample_rate, bool)
        or options.sample_rate not in SAMPLE_RATES
    ):
        fail("sample_rate", f"Must be one of: {', '.join(map(str, SAMPLE_RATES))}, or null.")
    if options.channels not in (1, 2) or isinstance(options.channels, bool):
        fail("channels", "Must be 1 or 2.")
    if options.bitrate_kbps is not None:
        low, high = BITRATE_RANGE_KBPS
        if not isinstance(options.bitrate_kbps, int) or isinstance(options.bitrate_kbps, bool):
            fail("bitrate_kbps", "Must be a whole number of kbit/s.")
        elif not low <= options.bitrate_kbps <= high:
            fail("bitrate_kbps", f"Must be between {low} and {high}.")
        elif options.format not in LOSSY_FORMATS:
            fail("bitrate_kbps", f"Only applies to {', '.join(sorted(LOSSY_FORMATS))}.")
    for name, bounds, unit in (
        ("speed", SPEED_RANGE, ""),
        ("pitch_semitones", PITCH_RANGE_SEMITONES, " semitones"),
        ("volume_db", VOLUME_RANGE_DB, " dB"),
        ("true_peak_dbtp", TRUE_PEAK_RANGE_DBTP, " dBTP"),
    ):
        value = getattr(options, name)
        if not _is_number(value) or not _in_range(value, bounds):
            fail(name, f"Must be a number between {bounds[0]:g} and {bounds[1]:g}{unit}.")
    loudness = options.loudness_lufs
    if loudness is not None and not (
        _is_number(loudness) and _in_range(loudness, LOUDNESS_RANGE_LUFS)
    ):
        quietest, loudest = LOUDNESS_RANGE_LUFS
        fail(
            "loudness_lufs", f"Must be a number between {quietest:g} and {loudest:g} LUFS, or null."
        )
    if not isinstance(options.trim_silence, bool):
        fail("trim_silence", "Must be true or false.")
    return errors


# --- from_request coercion: each returns (value, error message or None) -------------------


def _choice(choices: tuple[str, ...]):
    def coerce(raw: Any) -> tuple[Any, str | None]:
        if not isinstance(raw, str):
            return None, f"Must be one of: {', '.join(choices)}."
        value = raw.strip().lower()
        if value not in choices:
            return None, f"Must be one of: {', '.join(choices)}."
        return value, None

    return coerce


def _integer(message: str):
    def coerce(raw: Any) -> tuple[Any, str | None]:
        # Accept 24000.0 (some JSON encoders write floats) but not 24000.5, "24000" or true.
        if _is_number(raw) and math.isfinite(raw) and float(raw).is_integer():
            return int(raw), None
        return None, message

    return coerce


def _number(raw: Any) -> tuple[Any, str | None]:
    if _is_number(raw) and math.isfinite(raw):
        return float(raw), None
    return None, "Must be a number."


def _boolean(raw: Any) -> tuple[Any, str | None]:
    if isinstance(raw, bool):
        return raw, None
    return None, "Must be true or false."


_COERCERS = {
    "format": _choice(FORMATS),
    "wav_subtype": _choice(WAV_SUBTYPES),
    "sample_rate": _integer(f"Must be one of: {', '.join(map(str, SAMPLE_RATES))}, or null."),
    "channels": _integer("Must be 1 or 2."),
    "bitrate_kbps": _integer("Must be a whole number of kbit/s."),
    "speed": _number,
    "pitch_semitones": _number,
    "volume_db": _number,
    "loudness_lufs": _number,
    "true_peak_dbtp": _number,
    "trim_silence": _boolean,
}
