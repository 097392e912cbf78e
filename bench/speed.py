"""Speed of each engine and pipeline step per 1,000 characters, and a worker's memory.

    .venv/bin/python bench/speed.py              # about 3 minutes on 2 cores
    .venv/bin/python bench/speed.py --repeat 5

Each figure is the median of --repeat runs after one warm-up, on a 1,000-character English
text (Harvard sentences). Real-time factor = processing seconds / audio seconds (lower is
faster; 0.1 means ten times faster than real time). Memory: the peak resident set (VmHWM) of a
fresh process that loads the default engine and synthesises the text, next to the same process
that only sets up Django (the baseline). (`ru_maxrss` would carry over the parent's peak across
fork and exec.)
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")

import django  # noqa: E402

django.setup()

import numpy as np  # noqa: E402

from synthesis.audio import FORMATS, AudioOptions, encode, process  # noqa: E402
from synthesis.engines.base import SynthesisRequest  # noqa: E402
from synthesis.engines.registry import engine_list, loaded_engine  # noqa: E402
from synthesis.text import prepare  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"


def thousand_characters() -> str:
    text = ""
    for sentence in (DATA / "harvard.txt").read_text().splitlines():
        if len(text) + len(sentence) + 1 > 1000:
            break
        text += sentence + " "
    return text.strip()


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def memory_mb(code: str) -> float:
    script = (
        f"import os, sys; sys.path.insert(0, {str(ROOT)!r}); "
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings.local'); "
        f"import django; django.setup(); {code}; "
        "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    text = thousand_characters()
    scale = 1000 / len(text)
    segments = list(prepare(text=text).segments)

    print(f"Text: {len(text)} characters, {len(segments)} segments; figures scaled to 1,000 characters.\n")
    print("| step | seconds per 1,000 chars | audio seconds | real-time factor |")
    print("| --- | ---: | ---: | ---: |")
    normalise = median_seconds(lambda: list(prepare(text=text).segments), args.repeat)
    print(f"| normalise + segment | {normalise * scale:.4f} | | |")

    reference_audio = None
    for engine in engine_list():
        voices = engine.voices()
        if not voices:
            print(f"| synthesize: {engine.name} | not installed here | | |")
            continue
        try:
            loaded = loaded_engine(engine.name)
        except Exception as exc:  # noqa: BLE001  a missing model is reported, not fatal
            print(f"| synthesize: {engine.name} | unavailable: {exc} | | |")
            continue
        request = SynthesisRequest(voice=voices[0].name)
        chunks = []

        def run(loaded=loaded, request=request, chunks=chunks):
            chunks[:] = list(loaded.synthesize(segments, request))

        seconds = median_seconds(run, args.repeat)
        audio = sum(c.duration_seconds for c in chunks)
        print(f"| synthesize: {engine.name} ({voices[0].name}) | {seconds * scale:.3f} | {audio * scale:.1f} "
              f"| {seconds / audio:.3f} |")
        if reference_audio is None:
            reference_audio = (np.concatenate([c.samples for c in chunks]), chunks[0].sample_rate)

    samples, rate = reference_audio
    audio_seconds = len(samples) / rate
    processed, out_rate = process(samples, rate, AudioOptions(sample_rate=24000, loudness_lufs=-16))
    step = median_seconds(lambda: process(samples, rate, AudioOptions(sample_rate=24000, loudness_lufs=-16)),
                          args.repeat)
    print(f"| pipeline: trim, resample to 24 kHz, loudness -16 LUFS | {step * scale:.3f} | {audio_seconds * scale:.1f} "
          f"| {step / audio_seconds:.4f} |")
    for fmt in FORMATS:
        options = AudioOptions(format=fmt)
        step = median_seconds(lambda options=options: encode(processed, out_rate, options), args.repeat)
        print(f"| encode: {fmt} | {step * scale:.3f} | {audio_seconds * scale:.1f} | {step / audio_seconds:.4f} |")

    baseline = memory_mb("pass")
    worker = memory_mb(
        "from synthesis.engines.registry import loaded_engine; from synthesis.text import prepare; "
        "from synthesis.engines.base import SynthesisRequest; e = loaded_engine('piper'); "
        f"list(e.synthesize(prepare(text={text!r}).segments, SynthesisRequest(voice='en_US-joe-medium')))"
    )
    print(f"\nPeak memory: Django alone {baseline:.0f} MB; with Piper loaded and synthesising {worker:.0f} MB "
          f"(+{worker - baseline:.0f} MB).")


if __name__ == "__main__":
    main()
