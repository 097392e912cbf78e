"""Microsoft SpeechT5 on Hugging Face transformers: English, one speaker x-vector per voice.

Weights are operator-provided (see synthesis/engines/torch_base.py), under `<model dir>/`:

    speecht5/model/        SpeechT5ForTextToSpeech + SpeechT5Processor (microsoft/speecht5_tts)
    speecht5/vocoder/      SpeechT5HifiGan (microsoft/speecht5_hifigan)
    speecht5/speakers/     <voice>.npy: one 512-float x-vector per catalog voice

The tokenizer needs the sentencepiece package.
"""

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


@dataclass
class _SpeechT5Parts:
    processor: Any
    model: Any
    vocoder: Any


class SpeechT5Engine(TorchEngine):
    """Microsoft SpeechT5 (MIT): English; a voice is a 512-float speaker x-vector."""

    name = "speecht5"
    folder_name = "speecht5"
    SAMPLE_RATE = 16_000

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            model_version="speecht5-tts",
            languages=("en-US",),
            sample_rate=self.SAMPLE_RATE,
            can_clone=False,
            needs_gpu=False,  # ~150M parameters: real-time on a few CPU cores.
            licence=MIT,
        )

    def _speaker_files(self) -> dict[str, Path]:
        folder = self.folder / "speakers"
        return {path.stem: path for path in sorted(folder.glob("*.npy"))} if folder.is_dir() else {}

    def voices(self) -> list[VoiceInfo]:
        return [
            self.catalog_voice(
                name,
                language="en-US",
                licence=MIT,
                description=f"SpeechT5 speaker {name}",
                sample_rate=self.SAMPLE_RATE,
            )
            for name in self._speaker_files()
        ]

    def _load_model(self, torch) -> _SpeechT5Parts:
        from transformers import SpeechT5ForTextToSpeech, SpeechT5HifiGan, SpeechT5Processor

        model = self._from_pretrained(SpeechT5ForTextToSpeech, self.folder / "model")
        vocoder = self._from_pretrained(SpeechT5HifiGan, self.folder / "vocoder")
        processor = self._from_pretrained(SpeechT5Processor, self.folder / "model")
        return _SpeechT5Parts(
            processor=processor,
            model=model.to(self.torch_device).eval(),
            vocoder=vocoder.to(self.torch_device).eval(),
        )

    def _speaker_embedding(self, request: SynthesisRequest) -> np.ndarray:
        # A matched or custom voice brings its own x-vector as conditioning.
        path = request.conditioning_path or self._speaker_files().get(request.voice)
        if path is None or not Path(path).is_file():
            raise UnknownVoice(
                f"SpeechT5 has no voice {request.voice!r}.",
                extra={"voice": f"{self.name}:{request.voice}"},
            )
        embedding = np.load(path, allow_pickle=False).astype(np.float32).reshape(-1)
        if embedding.shape != (512,):
            raise SynthesisFailed(
                f"SpeechT5 speaker file {Path(path).name} holds {embedding.size} values, not 512."
            )
        return embedding

    def synthesize(
        self, segments: Iterable[Segment], request: SynthesisRequest
    ) -> Iterator[AudioChunk]:
        import torch

        parts = self.model
        speaker = torch.from_numpy(self._speaker_embedding(request))[None, :].to(self.torch_device)
        max_tokens = parts.model.config.max_text_positions
        for segment in segments:
            tokens = parts.processor(text=segment.text, return_tensors="pt")["input_ids"]
            input_ids = tokens[:, :max_tokens].to(self.torch_device)
            with torch.inference_mode():
                speech = parts.model.generate_speech(input_ids, speaker, vocoder=parts.vocoder)
            yield AudioChunk(samples=as_mono_float32(speech), sample_rate=self.SAMPLE_RATE)
