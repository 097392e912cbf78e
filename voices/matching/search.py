"""The search itself: the catalog packs first, then a (1+λ) evolution strategy, then the
finalists judged on other sentences (see voices.matching for the whole method).
"""

import io
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from synthesis.engines.base import SynthesisRequest
from synthesis.equalizer import Equalizer, SpectrumTarget
from synthesis.types import Segment
from voices.matching.scoring import (
    Clip,
    IntelligibilityGate,
    MatchingUnavailable,
    Transcriber,
    embed,
    reference_embedding,
)
from voices.matching.space import PackSpace

# Two short sentences of different lengths (so two rows of the pack are exercised), rich in
# vowels, nasals and fricatives. Kokoro renders about 1 s of audio per second on 2 cores, so
# every word here costs budget × time.
FITNESS_SENTENCES = (
    "Where were you yesterday?",
    "The early train leaves at nine, she said.",
)
# A catalog pack may be the base if its WER on the fitness sentences is within this of the
# clearest pack's: one word of the twelve, not two.
CATALOG_TOLERANCE = 0.10
TIMBRE_DIRECTIONS = 6
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
FINALISTS = 4  # the plain base pack and the three latest bests
# A searched finalist must beat the plain base pack (with its best equaliser) by this much on the
# validation sentences. The search's bests won many comparisons on two short sentences, so their
# lead is inflated even on new ones: on three benchmark speakers a lead of 0.018, 0.033 and 0.071
# on the validation sentences was -0.003, 0.033 and 0.044 on the held-out ones.
FINALIST_MARGIN = 0.02

ProgressCallback = Callable[[int, int], None]  # (evaluations done, evaluations planned)


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
