"""Peak memory of the audio pipeline against the length of the audio: the whole-file pipeline
(process() + encode(), what a job shorter than PARLA_LONG_RENDER_SECONDS uses) and the long
render over files on disk (synthesis.audio.long.LongRender).

    .venv/bin/python bench/long_render_memory.py                      # 5, 20, 60 minutes, 3 runs each
    .venv/bin/python bench/long_render_memory.py --minutes 5 20 --runs 1
    .venv/bin/python bench/long_render_memory.py --update-readme      # rewrite the README's table from the results

Each measurement is a fresh process (its peak resident set, ru_maxrss, as the kernel counts
it) that builds the same speech-like chunks (a voiced tone with a syllable rhythm and breath
noise, 0.8-2 s, then a 250 ms pause, at Piper's 22,050 Hz) and turns them into an MP3 at
44.1 kHz, loudness -16 LUFS. The engine is left out on purpose: this measures the pipeline.

Goal, set before the first run: the long render's peak grows by less than 50 MB from 5 to 60
minutes of audio (the whole-file pipeline's grows with the audio).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
RATE = 22050
GOAL_GROWTH_MB = 50


def _chunks(minutes: float):
    import numpy as np

    rng = np.random.default_rng(0)
    made, index = 0.0, 0
    while made < minutes * 60:
        t = np.arange(int(RATE * rng.uniform(0.8, 2.0))) / RATE
        voiced = 0.3 * np.sin(2 * np.pi * (140 + 10 * (index % 7)) * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        chunk = np.concatenate([(voiced + 0.05 * rng.standard_normal(t.size)).astype(np.float32),
                                np.zeros(RATE // 4, np.float32)])
        made += chunk.size / RATE
        index += 1
        yield chunk


def child(mode: str, minutes: float) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from synthesis.audio import AudioOptions, encode, process
    from synthesis.audio.long import LongRender

    options = AudioOptions(format="mp3", sample_rate=44100, loudness_lufs=-16.0)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="parla-bench-") as folder:
        target = Path(folder) / "out.mp3"
        if mode == "long":
            with LongRender(options, RATE) as long:
                for chunk in _chunks(minutes):
                    long.add(chunk)
                long.finish(target)
        else:
            whole = np.concatenate(list(_chunks(minutes)))
            target.write_bytes(encode(*process(whole, RATE, options), options))
        size = target.stat().st_size
    return {"mode": mode, "minutes": minutes, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "seconds": round(time.perf_counter() - started, 2), "mp3_bytes": size}


def measure(mode: str, minutes: float) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(minutes)], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def table(results: dict) -> str:
    lines = ["| audio | whole-file pipeline: peak | long render: peak | long render: time |",
             "| ---: | ---: | ---: | ---: |"]
    for minutes in results["minutes"]:
        rows = {mode: [r for r in results["runs"] if r["mode"] == mode and r["minutes"] == minutes]
                for mode in ("memory", "long")}
        peak = {mode: statistics.median(r["peak_rss_mb"] for r in rows[mode]) for mode in rows}
        seconds = statistics.median(r["seconds"] for r in rows["long"])
        lines.append(f"| {minutes:g} min | {peak['memory']:,.0f} MB | {peak['long']:,.0f} MB | {seconds:,.1f} s |")
    return "\n".join(lines)


def verdict(results: dict) -> str:
    long = {m: statistics.median(r["peak_rss_mb"] for r in results["runs"] if r["mode"] == "long" and r["minutes"] == m)
            for m in results["minutes"]}
    first, last = min(long), max(long)
    growth = long[last] - long[first]
    met = "met" if growth < GOAL_GROWTH_MB else "missed"
    return (f"The long render's peak grows by {growth:.0f} MB from {first:g} to {last:g} minutes of audio "
            f"(goal: under {GOAL_GROWTH_MB} MB; {met}).")


def update_readme(results: dict) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    block = f"<!-- long_render_memory -->\n{table(results)}\n\n{verdict(results)}\n<!-- /long_render_memory -->"
    text, count = re.subn(r"<!-- long_render_memory -->.*?<!-- /long_render_memory -->", block, text, flags=re.S)
    if count != 1:
        raise SystemExit("README.md has no <!-- long_render_memory --> block")
    readme.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "MINUTES"), help=argparse.SUPPRESS)
    parser.add_argument("--minutes", type=float, nargs="+", default=[5, 20, 60])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--json", type=Path, default=RESULTS / "long_render_memory.json")
    parser.add_argument("--update-readme", action="store_true", help="only rewrite the README's table from --json")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], float(args.child[1]))))
        return
    if args.update_readme:
        update_readme(json.loads(args.json.read_text()))
        return
    runs = []
    for run in range(args.runs):
        for minutes in args.minutes:
            for mode in ("long", "memory"):
                result = measure(mode, minutes) | {"run": run + 1, "at": time.strftime("%Y-%m-%d %H:%M:%S")}
                print(json.dumps(result), flush=True)
                runs.append(result)
    results = {"minutes": args.minutes, "runs": runs, "cpus": os.cpu_count()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    md = args.json.with_suffix(".md")
    listing = "\n".join(f"| {r['run']} | {r['at']} | {r['mode']} | {r['minutes']:g} | {r['peak_rss_mb']:,.0f} | "
                        f"{r['seconds']:,.1f} |" for r in runs)
    md.write_text(f"# Long render memory\n\n`{' '.join(['bench/long_render_memory.py', *sys.argv[1:]])}`\n\n"
                  f"Medians:\n\n{table(results)}\n\n{verdict(results)}\n\nEvery run:\n\n"
                  f"| run | at | mode | minutes | peak MB | seconds |\n| ---: | --- | --- | ---: | ---: | ---: |\n"
                  f"{listing}\n")
    print(table(results))
    print(verdict(results))


if __name__ == "__main__":
    main()
