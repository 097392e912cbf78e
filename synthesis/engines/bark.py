"""Suno Bark on Hugging Face transformers: expressive, slow, GPU-class.

Weights are operator-provided (see synthesis/engines/torch_base.py), under `<model dir>/`:

    bark/                  BarkModel + BarkProcessor (suno/bark or suno/bark-small), with the
                           presets such a copy lists in speaker_embeddings_path.json
    bark/voices/           more presets: <voice>.npz (semantic_prompt, coarse_prompt, fine_prompt)
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from synthesis.engines.base import EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.engines.torch_base import TorchEngine, as_mono_float32
from synthesis.errors import SynthesisFailed, UnknownVoice
from synthesis.types import AudioChunk, Segment

MIT = Licence("MIT", commercial_use=True, url="https://opensource.org/license/mit")

BARK_LANGUAGES = ("en", "de", "es", "fr", "hi", "it", "ja", "ko", "pl", "pt", "ru", "tr", "zh")


@dataclass
class _BarkParts:
    processor: Any
    model: Any


class BarkEngine(TorchEngine):
    """Suno Bark (MIT): expressive, slow, GPU-class. Cues like [laughs] or ♪ are passed through."""

    name = "bark"
    folder_name = "bark"
    SAMPLE_RATE = 24_000
    _PROMPT_KEYS = ("semantic_prompt", "coarse_prompt", "fine_prompt")

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            model_version="bark",
            languages=BARK_LANGUAGES,
            sample_rate=self.SAMPLE_RATE,
            can_clone=False,
            needs_gpu=True,  # Three autoregressive GPTs: many times slower than real time on a CPU.
            licence=MIT,
        )

    def _presets(self) -> dict[str, dict[str, Path]]:
        """{voice: {prompt key: file}} from bark/voices/*.npz, plus the presets that a Hugging
        Face copy of Bark lists in speaker_embeddings_path.json ("v2/en_speaker_6" becomes the
        voice "v2-en_speaker_6")."""
        presets: dict[str, dict[str, Path]] = {}
        folder = self.folder / "voices"
        for path in sorted(folder.glob("*.npz")) if folder.is_dir() else []:
            presets[path.stem] = dict.fromkeys(self._PROMPT_KEYS, path)
        index = self.folder / "speaker_embeddings_path.json"
        if index.is_file():
            for name, files in json.loads(index.read_text()).items():
                if isinstance(files, dict) and all(key in files for key in self._PROMPT_KEYS):
                    voice = name.replace("/", "-")
                    presets.setdefault(
                        voice, {key: self.folder / files[key] for key in self._PROMPT_KEYS}
                    )
        return presets

    def voices(self) -> list[VoiceInfo]:
        out = []
        for name in self._presets():
            # Suno names presets "en_speaker_6", "v2/de_speaker_3"...
            prefix = name.removeprefix("v2-").split("_")[0].lower()
            out.append(
                self.catalog_voice(
                    name,
                    language=prefix if prefix in BARK_LANGUAGES else "en",
                    licence=MIT,
                    description=f"Bark preset {name}",
                    sample_rate=self.SAMPLE_RATE,
                )
            )
        return out

    def _load_model(self, torch) -> _BarkParts:
        from transformers import BarkModel, BarkProcessor

        model = self._from_pretrained(BarkModel, self.folder)
        # Presets are read by _preset(): the processor would resolve them against the Hub.
        processor = self._from_pretrained(
            BarkProcessor, self.folder, speaker_embeddings_dict_path=None
        )
        return _BarkParts(processor=processor, model=model.to(self.torch_device).eval())

    def _preset(self, request: SynthesisRequest) -> dict[str, np.ndarray]:
        if request.conditioning_path is not None:  # A stored .npz preset for a matched voice.
            files = {key: Path(request.conditioning_path) for key in self._PROMPT_KEYS}
        else:
            files = self._presets().get(request.voice)
        if files is None or not all(path.is_file() for path in files.values()):
            raise UnknownVoice(
                f"Bark has no voice {request.voice!r}.",
                extra={"voice": f"{self.name}:{request.voice}"},
            )
        prompts = {}
        for key, path in files.items():
            data = np.load(path, allow_pickle=False)
            if isinstance(data, np.ndarray):  # .npy: one prompt per file
                prompts[key] = data
                continue
            with data:
                if key not in data:
                    raise SynthesisFailed(f"Bark preset {path.name} lacks {key}.")
                prompts[key] = data[key]
        return prompts

    def synthesize(
        self, segments: Iterable[Segment], request: SynthesisRequest
    ) -> Iterator[AudioChunk]:
        import torch

        parts = self.model
        preset = self._preset(request)
        sample_rate = int(getattr(parts.model.generation_config, "sample_rate", self.SAMPLE_RATE))
        for segment in segments:
            inputs = parts.processor(segment.text, voice_preset=preset, return_tensors="pt")
            history = {
                key: value.to(self.torch_device) for key, value in inputs["history_prompt"].items()
            }
            with torch.inference_mode():
                audio = parts.model.generate(
                    input_ids=inputs["input_ids"].to(self.torch_device),
                    attention_mask=inputs["attention_mask"].to(self.torch_device),
                    history_prompt=history,
                )
            yield AudioChunk(samples=as_mono_float32(audio[0]), sample_rate=sample_rate)
