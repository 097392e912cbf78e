"""Coqui XTTS-v2: multilingual speech in 17 languages and voice cloning (a GPU-class engine).

The weights are operator-provided, in `<model dir>/xtts_v2/`:

    model.pth  config.json  vocab.json      # as published with XTTS-v2
    speakers_xtts.pth                       # optional: built-in studio speakers -> catalog voices

Cloning happens once per voice: the enrollment job calls `compute_conditioning()` on the
reference recordings and `save_conditioning()` beside the voice profile; synthesis loads that
file from `request.conditioning_path` and never touches the recordings again.

NOTE: torchaudio. coqui-tts will not import without torchaudio and torchcodec, which often
cannot be installed beside torch; synthesis/engines/xtts_torchaudio.py imports it with small
stand-ins for them where they are missing, which is why reference audio is decoded here.
"""

import logging
import pickle
import re
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from synthesis.engines.base import EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.engines.torch_base import TorchEngine, as_mono_float32, import_torch
from synthesis.engines.xtts_torchaudio import import_with_stand_ins
from synthesis.errors import EngineUnavailable, SynthesisFailed, UnknownVoice
from synthesis.types import AudioChunk, Segment

logger = logging.getLogger(__name__)

CPML = Licence(
    "Coqui Public Model License (CPML)", commercial_use=False, url="https://coqui.ai/cpml"
)
SAMPLE_RATE = 24_000
# Conditioning audio is analysed at the GPT's rate (XttsAudioConfig.sample_rate).
_CONDITIONING_RATE = 22_050
LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru",
    "nl", "cs", "ar", "zh-cn", "ja", "hu", "ko", "hi",
)  # fmt: skip
_CONDITIONING_FORMAT = 1

_import_lock = threading.Lock()
# What reading the speakers file may raise: it is operator-provided and may be anything.
_UNREADABLE = (OSError, ValueError, TypeError, pickle.UnpicklingError, zipfile.BadZipFile)


class XttsEngine(TorchEngine):
    name = "xtts"
    folder_name = "xtts_v2"
    SPEAKERS_FILE = "speakers_xtts.pth"

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            model_version="xtts-v2",
            languages=LANGUAGES,
            sample_rate=SAMPLE_RATE,
            can_clone=True,
            needs_gpu=True,
            licence=CPML,
            native_speed=True,
        )

    # Catalog -------------------------------------------------------------------------------

    @cached_property
    def _speaker_names(self) -> dict[str, str]:
        """Built-in speakers as {voice name (slug): name in the speakers file}."""
        path = self.folder / self.SPEAKERS_FILE
        if not path.is_file():
            return {}
        try:
            names = read_torch_dict_keys(path)
        except _UNREADABLE as error:
            logger.warning(
                "xtts.speakers_unreadable", extra={"path": str(path), "error": str(error)}
            )
            return {}
        return {_slug(name): name for name in names}

    def voices(self) -> list[VoiceInfo]:
        return [
            self.catalog_voice(
                slug,
                language="en",
                licence=CPML,
                description=f"XTTS-v2 studio speaker {original} (all {len(LANGUAGES)} languages)",
                sample_rate=SAMPLE_RATE,
            )
            for slug, original in self._speaker_names.items()
        ]

    # Model ---------------------------------------------------------------------------------

    def _load_model(self, torch) -> Any:
        folder = self.folder
        for name in ("model.pth", "config.json", "vocab.json"):
            self.require_file(folder / name)
        try:
            xtts_config_class, xtts_class = import_coqui_xtts()
        except ImportError as error:
            raise EngineUnavailable(
                f"The {self.name} engine needs coqui-tts and transformers: install Parla's "
                f"engines extra (pip install '.[engines]'). {error}",
                extra={"engine": self.name},
            ) from error
        config = xtts_config_class()
        config.load_json(str(folder / "config.json"))
        # Xtts(config) is what the deprecated Xtts.init_from_config(config) does.
        model = xtts_class(config)
        # The GPT is only built once load_checkpoint() has attached the tokenizer (vocab.json).
        model.load_checkpoint(config, checkpoint_dir=str(folder), eval=True)
        # coqui drops the vocoder's weight norm only when it loads the vocoder on its own; folded
        # here too, so it is not recomputed on every call (same outputs, ~15% faster on a CPU).
        for module in model.hifigan_decoder.waveform_decoder.modules():
            if torch.nn.utils.parametrize.is_parametrized(module, "weight"):
                torch.nn.utils.parametrize.remove_parametrizations(module, "weight")
        return model.to(self.torch_device)

    # Cloning -------------------------------------------------------------------------------

    def compute_conditioning(self, reference_paths: list[Path]) -> dict:
        """GPT conditioning latent and speaker embedding from one or more reference recordings.

        Mirrors coqui's Xtts.get_conditioning_latents(), except that the audio is decoded here
        (soundfile + soxr) instead of through torchaudio/torchcodec.
        """
        if not reference_paths:
            raise SynthesisFailed("XTTS cloning needs at least one reference recording.")
        model = self.model
        torch = import_torch(self.name)
        config = model.config
        audios, speaker_embeddings = [], []
        with torch.inference_mode():
            for path in reference_paths:
                audio = torch.from_numpy(read_mono(Path(path), _CONDITIONING_RATE))[None, :]
                audio = audio[:, : _CONDITIONING_RATE * config.max_ref_len].to(self.torch_device)
                if config.sound_norm_refs:
                    audio = audio / audio.abs().max().clamp(min=1e-8) * 0.75
                speaker_embeddings.append(model.get_speaker_embedding(audio, _CONDITIONING_RATE))
                audios.append(audio)
            gpt_cond_latent = model.get_gpt_cond_latents(
                torch.cat(audios, dim=-1),
                _CONDITIONING_RATE,
                length=config.gpt_cond_len,
                chunk_length=config.gpt_cond_chunk_len,
            )
            speaker_embedding = torch.stack(speaker_embeddings).mean(dim=0)
        return {
            "gpt_cond_latent": gpt_cond_latent.cpu(),
            "speaker_embedding": speaker_embedding.cpu(),
        }

    def save_conditioning(self, conditioning: dict, path: Path) -> None:
        torch = import_torch(self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "format": _CONDITIONING_FORMAT,
                "gpt_cond_latent": conditioning["gpt_cond_latent"].detach().cpu().contiguous(),
                "speaker_embedding": conditioning["speaker_embedding"].detach().cpu().contiguous(),
            },
            path,
        )

    def load_conditioning(self, path: Path) -> dict:
        torch = import_torch(self.name)
        if not Path(path).is_file():
            raise UnknownVoice(
                "This cloned voice has no XTTS conditioning yet; enroll it again.",
                extra={"engine": self.name, "path": str(path)},
            )
        # SECURITY: weights_only refuses pickled code; the file holds tensors and an int only.
        stored = torch.load(path, map_location="cpu", weights_only=True)
        return {
            "gpt_cond_latent": stored["gpt_cond_latent"],
            "speaker_embedding": stored["speaker_embedding"],
        }

    def _conditioning_for(self, request: SynthesisRequest) -> dict:
        if request.conditioning_path is not None:
            return self.load_conditioning(request.conditioning_path)
        manager = getattr(self.model, "speaker_manager", None)
        original = self._speaker_names.get(request.voice)
        if manager is None or original is None:
            raise UnknownVoice(
                f"XTTS has no voice {request.voice!r}: clone a voice or add {self.SPEAKERS_FILE}.",
                extra={"voice": f"{self.name}:{request.voice}"},
            )
        # coqui itself unpacks a speaker's two tensors by position (latent first).
        gpt_cond_latent, speaker_embedding = manager.speakers[original].values()
        return {"gpt_cond_latent": gpt_cond_latent, "speaker_embedding": speaker_embedding}

    # Synthesis -----------------------------------------------------------------------------

    def synthesize(
        self, segments: Iterable[Segment], request: SynthesisRequest
    ) -> Iterator[AudioChunk]:
        model = self.model
        conditioning = self._conditioning_for(request)
        config = model.config
        default_language = request.options.get("language") or "en"
        for segment in segments:
            language = xtts_language(segment.lang or default_language)
            try:
                output = model.inference(
                    segment.text,
                    language,
                    conditioning["gpt_cond_latent"],
                    conditioning["speaker_embedding"],
                    temperature=config.temperature,
                    length_penalty=config.length_penalty,
                    repetition_penalty=config.repetition_penalty,
                    top_k=config.top_k,
                    top_p=config.top_p,
                    speed=request.speed,
                    # Segments are already sentence-sized; the text front-end split them.
                    enable_text_splitting=False,
                )
            except AssertionError as error:  # coqui asserts its 400-token limit per input
                raise SynthesisFailed(f"XTTS cannot say this segment: {error}") from error
            yield AudioChunk(samples=as_mono_float32(output["wav"]), sample_rate=SAMPLE_RATE)


def xtts_language(tag: str) -> str:
    """BCP-47 ("en-US", "zh-Hans") to the code XTTS expects ("en", "zh-cn")."""
    primary = tag.replace("_", "-").split("-")[0].lower()
    language = "zh-cn" if primary == "zh" else primary
    if language not in LANGUAGES:
        raise SynthesisFailed(f"XTTS does not speak {tag!r}; it speaks {', '.join(LANGUAGES)}.")
    return language


def read_torch_dict_keys(path: Path) -> list[str]:
    """The top-level keys of a dict saved with torch.save, read without torch.

    The catalog must list the built-in speakers on hosts without the engines extra (the web
    image). SECURITY: the unpickler resolves only torch's tensor-rebuild names, to a stub that
    ignores its arguments, and never loads the tensor data; any other global is refused.
    """

    def stub(*args, **kwargs) -> None:
        return None

    class KeysOnly(pickle.Unpickler):
        def find_class(self, module: str, name: str):
            if module == "collections" and name == "OrderedDict":
                return dict
            if module == "torch" or module.startswith("torch."):
                return stub
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in {path.name}")

        def persistent_load(self, pid) -> None:
            return None

    with zipfile.ZipFile(path) as archive:
        data = next(
            (n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"), None
        )
        if data is None:
            raise ValueError(f"{path.name} is not a torch.save archive")
        with archive.open(data) as handle:
            loaded = KeysOnly(handle).load()
    if not isinstance(loaded, dict):
        raise TypeError(f"{path.name} does not hold a dict")
    return [str(key) for key in loaded]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def read_mono(path: Path, sample_rate: int) -> np.ndarray:
    """Decode an audio file (WAV, FLAC, OGG, MP3: whatever libsndfile reads) to mono float32."""
    import soundfile
    import soxr

    samples, source_rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    mono = samples.mean(axis=1)
    if source_rate != sample_rate:
        mono = soxr.resample(mono, source_rate, sample_rate, quality="HQ")
    if mono.size == 0:
        raise SynthesisFailed(f"The reference recording {path.name} is empty.")
    return np.clip(mono, -1.0, 1.0).astype(np.float32, copy=False)


# Importing coqui ------------------------------------------------------------------------------


def import_coqui_xtts() -> tuple[type, type]:
    """(XttsConfig, Xtts), imported with stand-ins where torchaudio/torchcodec cannot load."""
    with _import_lock:
        if "TTS.tts.models.xtts" not in sys.modules:
            import_with_stand_ins("TTS.tts.models.xtts")
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    return XttsConfig, Xtts
