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

The package is independent of Django: enrollment and bench/voice_match.py both call match_voice().
Its modules: space (PackSpace), scoring (embeddings, Whisper and the IntelligibilityGate) and
search (match_voice, match_embedding).
"""

from voices.matching.scoring import (
    CONFIDENCE_TOLERANCE,
    WER_TOLERANCE,
    Clip,
    IntelligibilityGate,
    MatchingUnavailable,
    embed,
    reference_embedding,
    whisper_text_log_prob,
    whisper_transcribe,
    word_error_rate,
)
from voices.matching.search import MatchResult, match_embedding, match_voice
from voices.matching.space import PackSpace

__all__ = [
    "CONFIDENCE_TOLERANCE",
    "WER_TOLERANCE",
    "Clip",
    "IntelligibilityGate",
    "MatchResult",
    "MatchingUnavailable",
    "PackSpace",
    "embed",
    "match_embedding",
    "match_voice",
    "reference_embedding",
    "whisper_text_log_prob",
    "whisper_transcribe",
    "word_error_rate",
]
