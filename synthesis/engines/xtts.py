"""Coqui XTTS-v2: multilingual speech in 17 languages and voice cloning (a GPU-class engine).

The weights are operator-provided, in `<model dir>/xtts_v2/`:

    model.pth  config.json  vocab.json      # as published with XTTS-v2
    speakers_xtts.pth                       # optional: built-in studio speakers -> catalog voices

Cloning happens once per voice: the enrollment job calls `compute_conditioning()` on the
reference recordings and `save_conditioning()` beside the voice profile; synthesis loads that
file from `request.conditioning_path` and never touches the recordings again.

NOTE: torchaudio. coqui-tts refuses to import without torchaudio (and, from torch 2.9, torchcodec),
and the XTTS modules call torchaudio for two things only: `transforms.MelSpectrogram` and
`functional.resample`. torchaudio is tied to one torch release (PyPI has none for torch 2.13;
2.11's native libraries fail against it), and torchcodec needs system FFmpeg. So Parla decodes
reference audio itself (soundfile + soxr) and, only while coqui is being imported and only when
torchaudio/torchcodec cannot be imported, puts small stand-ins for them in `sys.modules`: the
two torchaudio pieces re-implemented with torch and soxr (same module layout and buffers as
torchaudio, so XTTS checkpoints load strictly), and an empty torchcodec that only satisfies
coqui's import check. They are removed again right after the import, so no other library
mistakes them for the real packages; a real torchaudio, where it works, is always preferred.
"""

import importlib.util
import logging
import pickle
import re
import sys
import threading
import zipfile
from collections.abc import Iterable, Iterator
from functools import cached_property
from importlib.machinery import ModuleSpec
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from synthesis.engines.base import EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.engines.torch_base import TorchEngine, as_mono_float32, import_torch
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


# Importing coqui without torchaudio / torchcodec ---------------------------------------------


def import_coqui_xtts() -> tuple[type, type]:
    """(XttsConfig, Xtts), imported with stand-ins where torchaudio/torchcodec cannot load."""
    with _import_lock:
        if "TTS.tts.models.xtts" not in sys.modules:
            _import_with_stand_ins()
        from TTS.tts.configs.xtts_config import XttsConfig
        from TTS.tts.models.xtts import Xtts
    return XttsConfig, Xtts


def _import_with_stand_ins() -> None:
    # transformers caches whether torchaudio/torchcodec exist; ask before the stand-ins appear
    # so its answers stay true for the rest of the process.
    from transformers.utils import import_utils as transformers_import_utils

    for probe in ("is_torchaudio_available", "is_torchcodec_available"):
        getattr(transformers_import_utils, probe, lambda: None)()

    stand_ins: dict[str, ModuleType] = {}
    if not _importable("torchaudio"):
        torchaudio = torchaudio_stand_in()
        stand_ins.update(
            {
                "torchaudio": torchaudio,
                "torchaudio.functional": torchaudio.functional,
                "torchaudio.transforms": torchaudio.transforms,
            }
        )
    if importlib.util.find_spec("torchcodec") is None:
        # coqui only checks that torchcodec exists (for torchaudio.load, which Parla never calls).
        stand_ins["torchcodec"] = _module("torchcodec", [])
    if stand_ins:
        logger.info("xtts.import_stand_ins", extra={"modules": sorted(stand_ins)})
    sys.modules.update(stand_ins)
    try:
        import TTS.tts.models.xtts  # noqa: F401
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]


def _importable(name: str) -> bool:
    try:
        importlib.import_module(name)
    # A torchaudio built for another torch fails with OSError or RuntimeError, not ImportError.
    except Exception:
        return False
    return True


def _module(name: str, provides: list[str]) -> ModuleType:
    module = ModuleType(name, f"Parla's stand-in for {name} (see synthesis/engines/xtts.py).")
    module.__spec__ = ModuleSpec(name, loader=None)  # importlib.util.find_spec() reads it
    module.__version__ = "0+parla.stand.in"

    def missing(attribute: str):
        raise AttributeError(
            f"{name}.{attribute} is not available: Parla's stand-in for {name} provides only "
            f"{', '.join(provides) or 'nothing'} (install a torchaudio matching torch for more)."
        )

    module.__getattr__ = missing
    return module


def torchaudio_stand_in() -> ModuleType:
    """A `torchaudio` with exactly what coqui's XTTS inference path calls.

    `transforms.MelSpectrogram` keeps torchaudio's submodules and buffers (`spectrogram.window`,
    `mel_scale.fb`) because the XTTS speaker encoder holds one and its weights are loaded
    strictly; `functional.resample` uses soxr (on the CPU: conditioning is computed once per voice).
    """
    import torch

    class Spectrogram(torch.nn.Module):
        def __init__(self, n_fft=400, win_length=None, hop_length=None, pad=0,
                     window_fn=torch.hann_window, power=2.0, normalized=False, wkwargs=None,
                     center=True, pad_mode="reflect", onesided=True):  # fmt: skip
            super().__init__()
            self.n_fft = n_fft
            self.win_length = win_length if win_length is not None else n_fft
            self.hop_length = hop_length if hop_length is not None else self.win_length // 2
            window = window_fn(self.win_length, **(wkwargs or {}))
            self.register_buffer("window", window)
            self.pad, self.power, self.normalized = pad, power, normalized
            self.center, self.pad_mode, self.onesided = center, pad_mode, onesided

        def forward(self, waveform):
            if self.pad > 0:
                waveform = torch.nn.functional.pad(waveform, (self.pad, self.pad), "constant")
            shape = waveform.size()
            spec = torch.stft(
                waveform.reshape(-1, shape[-1]),
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.win_length,
                window=self.window,
                center=self.center,
                pad_mode=self.pad_mode,
                normalized=self.normalized == "frame_length",
                onesided=self.onesided,
                return_complex=True,
            )
            spec = spec.reshape(shape[:-1] + spec.shape[-2:])
            if self.normalized in (True, "window"):
                spec = spec / self.window.pow(2.0).sum().sqrt()
            return spec if self.power is None else spec.abs().pow(self.power)

    class MelScale(torch.nn.Module):
        def __init__(self, n_mels=128, sample_rate=16000, f_min=0.0, f_max=None, n_stft=201,
                     norm=None, mel_scale="htk"):  # fmt: skip
            super().__init__()
            f_max = f_max if f_max is not None else float(sample_rate // 2)
            self.register_buffer(
                "fb", melscale_fbanks(n_stft, f_min, f_max, n_mels, sample_rate, norm, mel_scale)
            )

        def forward(self, specgram):
            return torch.matmul(specgram.transpose(-1, -2), self.fb).transpose(-1, -2)

    class MelSpectrogram(torch.nn.Module):
        def __init__(self, sample_rate=16000, n_fft=400, win_length=None, hop_length=None,
                     f_min=0.0, f_max=None, pad=0, n_mels=128, window_fn=torch.hann_window,
                     power=2.0, normalized=False, wkwargs=None, center=True, pad_mode="reflect",
                     onesided=None, norm=None, mel_scale="htk"):  # fmt: skip
            super().__init__()
            win_length = win_length if win_length is not None else n_fft
            hop_length = hop_length if hop_length is not None else win_length // 2
            self.spectrogram = Spectrogram(
                n_fft=n_fft, win_length=win_length, hop_length=hop_length, pad=pad,
                window_fn=window_fn, power=power, normalized=normalized, wkwargs=wkwargs,
                center=center, pad_mode=pad_mode,
            )  # fmt: skip
            self.mel_scale = MelScale(
                n_mels, sample_rate, f_min, f_max, n_fft // 2 + 1, norm, mel_scale
            )

        def forward(self, waveform):
            return self.mel_scale(self.spectrogram(waveform))

    def melscale_fbanks(n_freqs, f_min, f_max, n_mels, sample_rate, norm=None, mel_scale="htk"):
        if mel_scale != "htk":
            raise NotImplementedError(
                "Parla's torchaudio stand-in implements only mel_scale='htk'."
            )
        all_freqs = torch.linspace(0, sample_rate // 2, n_freqs)
        m_min = 2595.0 * np.log10(1.0 + f_min / 700.0)
        m_max = 2595.0 * np.log10(1.0 + f_max / 700.0)
        f_pts = 700.0 * (10 ** (torch.linspace(m_min, m_max, n_mels + 2) / 2595.0) - 1.0)
        f_diff = f_pts[1:] - f_pts[:-1]
        slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
        down_slopes = (-1.0 * slopes[:, :-2]) / f_diff[:-1]
        up_slopes = slopes[:, 2:] / f_diff[1:]
        fb = torch.max(torch.zeros(1), torch.min(down_slopes, up_slopes))
        if norm == "slaney":
            fb *= (2.0 / (f_pts[2 : n_mels + 2] - f_pts[:n_mels])).unsqueeze(0)
        return fb

    def resample(waveform, orig_freq, new_freq, *args, **kwargs):
        """soxr instead of torchaudio's sinc kernel; the filter options are not used."""
        import soxr

        if orig_freq == new_freq:
            return waveform
        shape = waveform.shape
        frames = waveform.detach().reshape(-1, shape[-1]).to("cpu", torch.float32).numpy().T
        resampled = soxr.resample(
            np.ascontiguousarray(frames), int(orig_freq), int(new_freq), quality="HQ"
        )
        channels_first = np.ascontiguousarray(resampled.reshape(resampled.shape[0], -1).T)
        out = torch.from_numpy(channels_first).reshape(*shape[:-1], -1)
        return out.to(waveform.device, waveform.dtype)

    functional = _module("torchaudio.functional", ["resample", "melscale_fbanks"])
    functional.resample = resample
    functional.melscale_fbanks = melscale_fbanks
    transforms = _module("torchaudio.transforms", ["Spectrogram", "MelScale", "MelSpectrogram"])
    transforms.Spectrogram = Spectrogram
    transforms.MelScale = MelScale
    transforms.MelSpectrogram = MelSpectrogram
    torchaudio = _module("torchaudio", ["functional.resample", "transforms.MelSpectrogram"])
    torchaudio.functional, torchaudio.transforms = functional, transforms
    return torchaudio
