"""Engines built on Hugging Face transformers: SpeechT5, MMS-TTS (VITS) and Bark.

Weights are operator-provided and loaded with `from_pretrained(<local folder>,
local_files_only=True)`: nothing is ever downloaded. Layout under `<model dir>/`:

    speecht5/model/        SpeechT5ForTextToSpeech + SpeechT5Processor (microsoft/speecht5_tts)
    speecht5/vocoder/      SpeechT5HifiGan (microsoft/speecht5_hifigan)
    speecht5/speakers/     <voice>.npy: one 512-float x-vector per catalog voice
    mms-tts/<lang>/        VitsModel + VitsTokenizer, one folder per language (facebook/mms-tts-eng
                           goes in mms-tts/eng/); ISO 639-3 folder names
    bark/                  BarkModel + BarkProcessor (suno/bark or suno/bark-small), with the
                           presets such a copy lists in speaker_embeddings_path.json
    bark/voices/           more presets: <voice>.npz (semantic_prompt, coarse_prompt, fine_prompt)

SpeechT5's tokenizer needs the sentencepiece package; MMS languages written in non-Latin
scripts need the uroman package (transformers romanises with it when it is installed).

torch and transformers are imported inside load(), so `info` and `voices()` work on hosts
without the engines extra. `TorchEngine` is the plumbing shared with the XTTS engine.
"""

import gc
import json
import threading
from abc import abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from synthesis.engines.base import Engine, EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.errors import EngineUnavailable, SynthesisFailed, UnknownVoice
from synthesis.types import AudioChunk, Segment

MIT = Licence("MIT", commercial_use=True, url="https://opensource.org/license/mit")
CC_BY_NC = Licence(
    "CC-BY-NC 4.0", commercial_use=False, url="https://creativecommons.org/licenses/by-nc/4.0/"
)


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


# SpeechT5 -------------------------------------------------------------------------------------


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


# MMS-TTS ---------------------------------------------------------------------------------------

# ISO 639-3 (MMS folder names) -> ISO 639-1, which BCP-47 prefers where one exists.
_ISO_639_PAIRS = """
    afr:af amh:am ara:ar asm:as aze:az azj:az bak:ba bel:be ben:bn bod:bo bos:bs bre:br bul:bg
    cat:ca ces:cs cym:cy dan:da deu:de div:dv ell:el eng:en epo:eo est:et eus:eu ewe:ee fao:fo
    fas:fa pes:fa fin:fi fij:fj fra:fr fry:fy gla:gd gle:ga glg:gl grn:gn guj:gu hat:ht hau:ha
    heb:he hin:hi hrv:hr hun:hu hye:hy ibo:ig ind:id isl:is ita:it jav:jv jpn:ja kan:kn kat:ka
    kaz:kk khm:km kik:ki kin:rw kir:ky kmr:ku kor:ko lao:lo lat:la lav:lv lin:ln lit:lt ltz:lb
    lug:lg mal:ml mar:mr mkd:mk mlg:mg plt:mg mlt:mt mon:mn khk:mn mri:mi msa:ms zlm:ms mya:my
    nep:ne npi:ne nld:nl nno:nn nob:nb nya:ny oci:oc ori:or ory:or orm:om gaz:om pan:pa pol:pl
    por:pt pus:ps pbt:ps que:qu quz:qu ron:ro run:rn rus:ru sag:sg sin:si slk:sk slv:sl smo:sm
    sna:sn snd:sd som:so sot:st spa:es sqi:sq srp:sr ssw:ss sun:su swa:sw swh:sw swe:sv tam:ta
    tat:tt tel:te tgk:tg tgl:tl tha:th tir:ti ton:to tsn:tn tso:ts tuk:tk tur:tr twi:tw uig:ug
    ukr:uk urd:ur uzb:uz uzn:uz ven:ve vie:vi wol:wo xho:xh yid:yi yor:yo zho:zh cmn:zh zul:zu
"""
_ISO_639_1 = dict(pair.split(":") for pair in _ISO_639_PAIRS.split())


def mms_language(folder_name: str) -> str:
    """MMS folder name to BCP-47: "eng" -> "en", "azj-script_latin" -> "az", "quc" -> "quc"."""
    code = folder_name.split("-")[0].lower()
    return _ISO_639_1.get(code, code)


@dataclass
class _VitsParts:
    tokenizer: Any
    model: Any
    # transformers 4.x reads the speed from the model's `speaking_rate` attribute, not from
    # an argument; setting it and running must not interleave with another request's speed.
    speed_lock: threading.Lock = field(default_factory=threading.Lock)

    def waveform(self, inputs, speed: float):
        with self.speed_lock:
            self.model.speaking_rate = speed
            return self.model(**inputs).waveform


class MmsEngine(TorchEngine):
    """Meta's MMS-TTS (CC-BY-NC 4.0): one small VITS model per language, each a catalog voice."""

    name = "mms"
    folder_name = "mms-tts"
    DEFAULT_LANGUAGE = "eng"

    def _language_folders(self) -> dict[str, Path]:
        if not self.folder.is_dir():
            return {}
        return {p.name: p for p in sorted(self.folder.iterdir()) if (p / "config.json").is_file()}

    def _sampling_rate(self, folder: Path) -> int:
        return int(json.loads((folder / "config.json").read_text()).get("sampling_rate", 16_000))

    @property
    def info(self) -> EngineInfo:
        folders = self._language_folders()
        first = folders.get(self.DEFAULT_LANGUAGE) or next(iter(folders.values()), None)
        return EngineInfo(
            name=self.name,
            model_version="mms-tts",
            languages=tuple(sorted({mms_language(name) for name in folders})),
            sample_rate=self._sampling_rate(first) if first else 16_000,
            can_clone=False,
            needs_gpu=False,  # ~36M parameters per language.
            licence=CC_BY_NC,
            native_speed=True,
        )

    def voices(self) -> list[VoiceInfo]:
        return [
            self.catalog_voice(
                name,
                language=mms_language(name),
                licence=CC_BY_NC,
                description=f"MMS-TTS {name} (non-commercial)",
                sample_rate=self._sampling_rate(folder),
            )
            for name, folder in self._language_folders().items()
        ]

    def _load_model(self, torch) -> dict[str, _VitsParts]:
        """Loads the default language; the others load on first use (see `_language`)."""
        folders = self._language_folders()
        if not folders:
            raise EngineUnavailable(
                f"The {self.name} engine's folder {self.folder} has no language folders "
                f"(e.g. {self.folder / self.DEFAULT_LANGUAGE} holding facebook/mms-tts-eng).",
                extra={"engine": self.name, "path": str(self.folder)},
            )
        default = self.DEFAULT_LANGUAGE if self.DEFAULT_LANGUAGE in folders else next(iter(folders))
        return {default: self._load_language(folders[default])}

    def _load_language(self, folder: Path) -> _VitsParts:
        from transformers import AutoTokenizer, VitsModel

        model = self._from_pretrained(VitsModel, folder)
        tokenizer = self._from_pretrained(AutoTokenizer, folder)
        return _VitsParts(tokenizer=tokenizer, model=model.to(self.torch_device).eval())

    def _language(self, name: str) -> _VitsParts:
        models = self.model
        with self._lock:
            if name not in models:
                folder = self._language_folders().get(name)
                if folder is None:
                    raise UnknownVoice(
                        f"MMS has no voice {name!r}.", extra={"voice": f"{self.name}:{name}"}
                    )
                models[name] = self._load_language(folder)
            return models[name]

    def _folder_for_segment(self, segment: Segment, voice: str) -> str:
        """An SSML <lang> switch picks that language's model when it is installed."""
        if segment.lang:
            wanted = segment.lang.split("-")[0].lower()
            for name in self._language_folders():
                if mms_language(name) == wanted or name == wanted:
                    return name
        return voice

    def synthesize(
        self, segments: Iterable[Segment], request: SynthesisRequest
    ) -> Iterator[AudioChunk]:
        import torch

        self._language(request.voice)  # Unknown voices fail before any audio is made.
        for segment in segments:
            parts = self._language(self._folder_for_segment(segment, request.voice))
            inputs = parts.tokenizer(segment.text, return_tensors="pt")
            if inputs["input_ids"].shape[-1] == 0:
                raise SynthesisFailed(f"MMS could not read any character of {segment.text[:40]!r}.")
            with torch.inference_mode():
                waveform = parts.waveform(inputs.to(self.torch_device), request.speed)
            yield AudioChunk(
                samples=as_mono_float32(waveform[0]),
                sample_rate=parts.model.config.sampling_rate,
            )


# Bark -------------------------------------------------------------------------------------------

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
            presets[path.stem] = {key: path for key in self._PROMPT_KEYS}
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
