"""Meta's MMS-TTS on Hugging Face transformers: one small VITS model per language.

Weights are operator-provided (see synthesis/engines/torch_base.py), under `<model dir>/`:

    mms-tts/<lang>/        VitsModel + VitsTokenizer, one folder per language (facebook/mms-tts-eng
                           goes in mms-tts/eng/); ISO 639-3 folder names

Languages written in non-Latin scripts need the uroman package (transformers romanises with it
when it is installed).
"""

import json
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from synthesis.engines.base import EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.engines.torch_base import TorchEngine, as_mono_float32
from synthesis.errors import EngineUnavailable, SynthesisFailed, UnknownVoice
from synthesis.types import AudioChunk, Segment

CC_BY_NC = Licence(
    "CC-BY-NC 4.0", commercial_use=False, url="https://creativecommons.org/licenses/by-nc/4.0/"
)


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
