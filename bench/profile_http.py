"""Where a who-saw request's time goes inside `ledger serve`, under the bench's load.

    python bench/profile_http.py --db build/bench-http-1000000.db --rate 200 --duration 10

The server runs in this process (the application ``ledger serve`` builds,
on uvicorn) with its route's steps wrapped in spans: token check (auth),
the query and paging (query), the JSON answer and cursor (render) and the
recorded read (record), each as wall time and as the thread's own CPU time,
so waiting (for the GIL, for the outbox's fsync) shows as their difference.
A sampling thread reads every thread's Python stack every few ms
(``sys._current_frames``; py-spy is not installed) and prints the functions
busy threads were in. The load (bench/httpload.py) runs in another process;
a local broker takes the recorded reads unless ``--no-broker``.
"""

from __future__ import annotations

import argparse
import collections
import functools
import json
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import bench_settings, machine  # noqa: E402 - after the sys.path line above

SPANS = ("auth", "query", "render", "record")
_IDLE = {("threading.py", "wait"), ("selectors.py", "select"), ("queue.py", "get"), ("threading.py", "_wait_for_tstate_lock"),
         ("_thread", "acquire")}


class Spans:
    def __init__(self):
        self.wall = collections.defaultdict(list)
        self.cpu = collections.defaultdict(list)
        self.lock = threading.Lock()

    def wrap(self, name, fn):
        @functools.wraps(fn)
        def timed(*a, **kw):
            w, c = time.perf_counter_ns(), time.thread_time_ns()
            try:
                return fn(*a, **kw)
            finally:
                dw, dc = time.perf_counter_ns() - w, time.thread_time_ns() - c
                with self.lock:
                    self.wall[name].append(dw / 1e6)
                    self.cpu[name].append(dc / 1e6)
        return timed

    def asgi(self, app):
        async def timed(scope, receive, send):
            if scope["type"] != "http" or not scope["path"].startswith("/v1/"):
                return await app(scope, receive, send)
            w = time.perf_counter_ns()
            try:
                await app(scope, receive, send)
            finally:
                with self.lock:
                    self.wall["total (ASGI app)"].append((time.perf_counter_ns() - w) / 1e6)
        return timed


class Sampler(threading.Thread):
    """Every ``interval`` s: each other thread's stack; counts leaf and inclusive functions of busy threads."""

    def __init__(self, interval: float):
        super().__init__(daemon=True, name="sampler")
        self.interval = interval
        self.leaf = collections.Counter()
        self.inclusive = collections.Counter()
        self.busy = collections.Counter()  # thread kind -> busy samples
        self.samples = 0
        self.stop = threading.Event()

    def run(self):
        me = threading.get_ident()
        main = threading.main_thread().ident
        names = {}
        while not self.stop.wait(self.interval):
            self.samples += 1
            for t in threading.enumerate():
                names[t.ident] = t.name
            for ident, frame in sys._current_frames().items():
                if ident in (me, main):
                    continue
                kind = names.get(ident, "?").split(" ")[0].rstrip("_0123456789-")
                top = (Path(frame.f_code.co_filename).name, frame.f_code.co_name)
                if top in _IDLE:
                    continue
                self.busy[kind] += 1
                seen = set()
                self.leaf[(kind, f"{top[0]}:{frame.f_lineno} {top[1]}")] += 1
                f = frame
                while f is not None:
                    key = (kind, f"{Path(f.f_code.co_filename).name} {f.f_code.co_name}")
                    if key not in seen:
                        seen.add(key)
                        self.inclusive[key] += 1
                    f = f.f_back


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))] if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--subjects", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=200.0)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--sample-ms", type=float, default=5.0)
    ap.add_argument("--no-broker", action="store_true", help="no broker: the records wait in the outbox")
    ap.add_argument("--top", type=int, default=30)
    ap.add_argument("--threads", type=int, default=8, help="the server's --threads")
    ap.add_argument("--cprofile", type=Path, default=None,
                    help="also run cProfile in every server thread and write the merged stats here")
    args = ap.parse_args()

    import uvicorn

    from ledger.http import api
    from ledger.http.server import ServeConfig, build
    from ledger.http.tokens import issue_token, write_keypair

    print(f"# profile_http: {machine()}; {args.db}; offered {args.rate:g} req/s from {args.clients} clients, "
          f"{args.duration:g} s")
    spans = Spans()
    for name, attr in (("auth", "reader_of_subject"), ("query", "paginate"), ("render", "page_response"),
                       ("record", "record")):
        setattr(api, attr, spans.wrap(name, getattr(api, attr)))

    with tempfile.TemporaryDirectory(prefix="ledger-profile-http-") as tmpdir, \
            bench_settings(db=str(args.db)) if not args.no_broker else _no_broker(args.db) as settings:
        tmp = Path(tmpdir)
        key, public = write_keypair(tmp / "api.key")
        newer = {"threads": args.threads} if "threads" in ServeConfig.__dataclass_fields__ else {}  # a server before it
        config = ServeConfig(settings=settings, host="127.0.0.1", port=_free_port(), token_key=str(public),
                             outbox=str(tmp / "outbox.db"), **newer)
        app, recorder = build(config)
        profiles = _profile_threads() if args.cprofile else None
        server = uvicorn.Server(uvicorn.Config(spans.asgi(app), host=config.host, port=config.port,
                                               log_level="warning", access_log=False))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        token = issue_token(key, scope="audit:read", holder="emp-bench")
        rng = random.Random(1)
        paths = [f"/v1/subjects/cust-{rng.randrange(args.subjects):06d}/who-saw" for _ in
                 range(int(args.rate * args.duration))]
        sampler = Sampler(args.sample_ms / 1000)
        if args.sample_ms > 0:
            sampler.start()
        cpu_before, wall_before = _cpu_seconds(), time.perf_counter()
        out = subprocess.run([sys.executable, str(ROOT / "bench" / "httpload.py"), f"http://127.0.0.1:{config.port}",
                              "--rate", str(args.rate), "--clients", str(args.clients), "--check-page",
                              "--header", f"Authorization: Bearer {token}", "--header", "X-Justification: profile"],
                             input="\n".join(paths), capture_output=True, text=True, check=True)
        cpu = _cpu_seconds() - cpu_before
        wall = time.perf_counter() - wall_before
        sampler.stop.set()
        server.should_exit = True
        thread.join(15)
        if profiles is not None:
            threading.setprofile(None)
            import pstats

            stats = None
            for prof in profiles:
                prof.create_stats()
                if prof.stats:
                    stats = pstats.Stats(prof) if stats is None else stats.add(prof)
            stats.dump_stats(args.cprofile)
        waiting = recorder.deliver(10)
        recorder.close()
    load = json.loads(out.stdout)
    lat = load["latencies_ms"]
    print(f"load: achieved {load['achieved']:.1f} req/s, errors {load['errors'] or 'none'}; from when due p50 "
          f"{pct(lat, 50):.1f} p99 {pct(lat, 99):.1f} max {max(lat):.1f} ms; from when sent p50 "
          f"{pct(load['service_ms'], 50):.1f} p99 {pct(load['service_ms'], 99):.1f} ms; {waiting} reads left in outbox")
    n = len(lat)
    print(f"server process CPU {cpu * 1000 / n:.2f} ms per request ({cpu / wall:.0%} of a core over the run, "
          f"sampler included); load process CPU {load['cpu_seconds'] * 1000 / n:.2f} ms per request")
    print(f"\n{'span':<20} {'n':>6} {'wall p50':>9} {'wall p99':>9} {'wall mean':>9} {'cpu mean':>9}  (ms)")
    for name in (*SPANS, "total (ASGI app)"):
        w, c = spans.wall.get(name, []), spans.cpu.get(name, [])
        if w:
            cpu = f"{sum(c) / len(c):9.2f}" if c else f"{'-':>9}"
            print(f"{name:<20} {len(w):>6} {pct(w, 50):9.2f} {pct(w, 99):9.2f} {sum(w) / len(w):9.2f} {cpu}")
    total = sampler.samples
    if not total:
        return 0
    print(f"\nsampled {total} times every {args.sample_ms:g} ms; busy samples per thread kind: "
          + ", ".join(f"{k} {v} ({v / total:.0%})" for k, v in sampler.busy.most_common()))
    print("\ntop inclusive (busy samples whose stack holds the function, per thread kind):")
    for (kind, fn), n in sampler.inclusive.most_common(args.top):
        print(f"  {n / total:6.1%}  {kind:<12} {fn}")
    print("\ntop leaf lines:")
    for (kind, fn), n in sampler.leaf.most_common(args.top):
        print(f"  {n / total:6.1%}  {kind:<12} {fn}")
    return 0


def _profile_threads() -> list:
    """A cProfile.Profile in each thread started from now on (the server's loop, its worker threads)."""
    import cProfile

    profiles = []

    def start(frame, event, arg):
        prof = cProfile.Profile()
        profiles.append(prof)
        prof.enable()  # replaces this hook in this thread

    threading.setprofile(start)
    return profiles


def _cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _no_broker:
    def __init__(self, db):
        from ledger.config import Settings

        self.settings = Settings.load(env={}, bootstrap_servers="127.0.0.1:1", db=str(db))

    def __enter__(self):
        return self.settings

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
