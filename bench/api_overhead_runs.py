"""Every run of bench/api_overhead.py kept in bench/results/api_overhead_runs/, side by side.

    .venv/bin/python bench/api_overhead_runs.py                 # print the tables
    .venv/bin/python bench/api_overhead_runs.py --write         # also write the .md and the README block

A change that may cost or save request time is measured by runs before and after it, at
different hours (this machine's speed varies 10-30% from hour to hour), with the same method
(bench/api_overhead.py's defaults). Each run is a file `<UTC time>_<commit>.json` (its raw
numbers and summary, from `--json`) with its tables in `<UTC time>_<commit>.md` (`--report`).
`phases.json` names the phase of each commit ("before", "after") and says what changed; every
run of a listed commit is shown, misses included, and the medians per phase are compared.

Figures per run, for the ~60-character text (where bookkeeping weighs most) and the others:
- Parla and Piper HTTP: median seconds, one request at a time;
- vs HTTP: Parla / Piper HTTP - 1 of those medians; paired: the median over repeats of the
  same ratio within one repeat (drift cancels);
- around the render: Parla's total minus the render itself (web tier, queue, worker
  bookkeeping: take, settle), in ms; worker: the worker's run minus the render, in ms;
- 4 at a time: Parla's median latency vs Piper HTTP's, and throughput (requests/s) vs Piper HTTP's.
"""

import argparse
import json
import statistics
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = ROOT / "bench" / "results" / "api_overhead_runs"
OUT = ROOT / "bench" / "results" / "api_overhead_runs.md"
README = ROOT / "README.md"
MARK = "api_overhead_runs"


def load_runs() -> tuple[dict, list[dict]]:
    phases = json.loads((RUNS / "phases.json").read_text())
    runs = []
    for path in sorted(RUNS.glob("*.json")):
        if path.name == "phases.json":
            continue
        when, _, commit = path.stem.partition("_")
        if commit not in phases["commits"]:
            continue
        data = json.loads(path.read_text())
        day, _, clock = when.partition("T")
        runs.append({"when": f"{day} {clock.replace('-', ':')}", "commit": commit,
                     "phase": phases["commits"][commit], "summary": data["summary"], "meta": data["meta"]})
    return phases, runs


def figures(summary: dict) -> dict:
    short = summary["60"]
    row = {
        "parla_60": short["parla_total"], "http_60": short["piper_http_total"],
        "vs_60": short["parla_vs_http_c1"], "paired_60": short["parla_vs_http_c1_paired"],
        "around_ms": (short["parla_total"] - short["parla_processing"]) * 1000,
        "worker_ms": (short["parla_worker_run"] - short["parla_processing"]) * 1000,
        "c4_60": short["parla_vs_http_c4"], "c4_rps_60": short["parla_vs_http_c4_rps"],
    }
    for text in ("250", "1000"):
        if text in summary:
            row[f"vs_{text}"] = summary[text]["parla_vs_http_c1"]
            row[f"paired_{text}"] = summary[text]["parla_vs_http_c1_paired"]
    return row


COLUMNS = [
    ("parla_60", "Parla 60 (s)", "{:.3f}"), ("http_60", "Piper HTTP 60 (s)", "{:.3f}"),
    ("vs_60", "vs HTTP", "{:+.1%}"), ("paired_60", "paired", "{:+.1%}"),
    ("around_ms", "around the render (ms)", "{:.1f}"), ("worker_ms", "of which worker (ms)", "{:.1f}"),
    ("vs_250", "255: vs HTTP", "{:+.1%}"), ("vs_1000", "1,002: vs HTTP", "{:+.1%}"),
    ("c4_60", "4 at a time, 60: latency", "{:+.1%}"), ("c4_rps_60", "throughput", "{:+.1%}"),
]


def _cell(row: dict, key: str, fmt: str) -> str:
    return fmt.format(row[key]) if row.get(key) is not None else ""


def tables(phases: dict, runs: list[dict]) -> str:
    lines = [
        f"{phases['change']}",
        "",
        "| run (UTC) | commit | phase | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "| --- | --- | --- | " + " | ".join("---:" for _ in COLUMNS) + " |",
    ]
    by_phase: dict[str, list[dict]] = {}
    for run in runs:
        row = figures(run["summary"])
        by_phase.setdefault(run["phase"], []).append(row)
        lines.append(f"| {run['when']} | {run['commit']} | {run['phase']} | "
                     + " | ".join(_cell(row, key, fmt) for key, _, fmt in COLUMNS) + " |")
    lines += ["", "Medians per phase:", "",
              "| phase | runs | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
              "| --- | ---: | " + " | ".join("---:" for _ in COLUMNS) + " |"]
    medians = {}
    for phase in phases["order"]:
        rows = by_phase.get(phase, [])
        if not rows:
            continue
        medians[phase] = {key: statistics.median(row[key] for row in rows if row.get(key) is not None)
                          for key, _, _ in COLUMNS}
        lines.append(f"| {phase} | {len(rows)} | "
                     + " | ".join(_cell(medians[phase], key, fmt) for key, _, fmt in COLUMNS) + " |")
    if all(phase in medians for phase in phases["order"][:2]):
        before, after = (medians[phase] for phase in phases["order"][:2])
        spread = [row["vs_60"] for rows in by_phase.values() for row in rows]
        lines += ["", (
            f"Change of the medians, {phases['order'][0]} -> {phases['order'][1]}: 60 characters vs Piper HTTP "
            f"{before['vs_60']:+.1%} -> {after['vs_60']:+.1%} (paired {before['paired_60']:+.1%} -> "
            f"{after['paired_60']:+.1%}); time around the render {before['around_ms']:.1f} -> "
            f"{after['around_ms']:.1f} ms, of which the worker's {before['worker_ms']:.1f} -> "
            f"{after['worker_ms']:.1f} ms. Run-to-run spread of the 60-character ratio over all runs: "
            f"{min(spread):+.1%} to {max(spread):+.1%}."
        )]
    return "\n".join(lines)


def write(text: str) -> None:
    OUT.write_text("# API overhead, run by run\n\nMade by `bench/api_overhead_runs.py --write` from "
                   "`bench/results/api_overhead_runs/`.\n\n" + text + "\n")
    readme = README.read_text()
    start, end = f"<!-- {MARK} -->", f"<!-- /{MARK} -->"
    if start not in readme or end not in readme:
        raise SystemExit(f"README.md has no {start} block")
    head, _, rest = readme.partition(start)
    _, _, tail = rest.partition(end)
    README.write_text(f"{head}{start}\n{text}\n{end}{tail}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write", action="store_true", help=f"write {OUT.name} and the README's block")
    args = parser.parse_args()
    phases, runs = load_runs()
    text = tables(phases, runs)
    print(text)
    if args.write:
        write(text)


if __name__ == "__main__":
    main()
