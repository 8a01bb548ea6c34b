"""Data-plane benchmark: the gateway against a direct call to the same upstream.

    .venv/bin/python bench/run.py            # full run (~4 min), writes docs/benchmarks.md
    .venv/bin/python bench/run.py --quick    # smoke run (~1 min), prints only
    .venv/bin/python bench/run.py --backend embedded|redis

Everything runs on 127.0.0.1 in a throwaway directory: the fake Anthropic
server (tests/fakes/anthropic.py, its own process), a world seeded through
governance.services in a fresh SQLite database (bench/seed.py), and the data
plane as production runs it (uvicorn, uvloop + httptools, 2 worker processes).

Backends: ``embedded`` (file snapshot, usage events to spool files, budget and
rate counters in process) or ``redis`` (snapshot, usage events and counters in
Redis). The default is ``redis`` when REDIS_URL is set or
redis://127.0.0.1:6379/0 answers PING, else ``embedded``. The Redis may be
shared: everything goes under a fresh ``TOLLGATE_REDIS_PREFIX``
(``tgbench-<random>:``), the usage stream is trimmed between phases (no log
writer consumes it here), and every key under the prefix is deleted at the end
(SCAN + DEL; never FLUSHDB).

Scenarios: non-streaming and streaming with a plain virtual key, each against
the fake directly and through the gateway; and non-streaming through the
gateway with a second key that has a USD budget at all four levels and a
request-rate limit (admission and settlement on every request; its *direct*
figures are the non-streaming ones). For each:

- latency at a fixed offered rate (1,000 rps) from an open-loop generator
  (bench/openloop.py) that measures from each request's scheduled send time;
- max throughput from ``wrk`` (closed loop, fixed connections);
- gateway CPU per request: utime+stime of the worker processes
  (/proc/<pid>/stat) over a phase, divided by the requests served in it.

Then the workers' RSS (/proc/<pid>/status) before and after 100,000
non-streaming requests. Every process started here is stopped on exit, error,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DOC = ROOT / "docs" / "benchmarks.md"
PY = sys.executable
CLK_TCK = os.sysconf("SC_CLK_TCK")
PROVIDER_KEY = "sk-ant-fake-provider-key"
# Fixed so the seeding script and the gateway derive the same key pepper.
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
MODEL = "claude-sonnet-4-6"
PATH = "/v1/messages"
WORKERS = 2
RATE = 1000
TARGET_CPU_US = 400
TARGET_GOVERNED_CPU_US = 300
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
PLAIN, GOVERNED, STREAMING = "non-streaming", "non-streaming, budgets on", "streaming"
GOVERNED_STREAMING = "streaming, budgets on"
# Each governed scenario and the plain one it is measured against (same request).
BUDGETS_OFF = {GOVERNED: PLAIN, GOVERNED_STREAMING: STREAMING}
TARGET_P99_OVERHEAD_MS = 5.0
RESULTS_MARKER = "<!-- results: everything below this line is rewritten by bench/run.py -->"


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class BenchError(RuntimeError):
    """The benchmark cannot go on; the message says why."""


def body(stream: bool) -> str:
    doc: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hi"}],
    }
    if stream:
        doc["stream"] = True
    return json.dumps(doc, separators=(",", ":"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- /proc ----------------------------------------------------------------------


def proc_stat(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    # comm (field 2) may hold spaces; everything after its closing paren splits cleanly.
    return raw[raw.rindex(")") + 2 :].split()


def cpu_ticks(pid: int) -> int:
    fields = proc_stat(pid)  # fields[0] is field 3 (state): utime is 14, stime 15
    return int(fields[11]) + int(fields[12])


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise BenchError(f"no VmRSS for pid {pid}")


def children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if int(proc_stat(int(entry.name))[1]) != pid:
                continue
            cmdline = (entry / "cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError, ValueError):
            continue
        if b"resource_tracker" in cmdline:
            continue
        out.append(int(entry.name))
    return sorted(out)


def machine_facts() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    wrk = "none"
    if shutil.which("wrk"):
        res = subprocess.run(["wrk", "-v"], capture_output=True, text=True, timeout=10)
        words = (res.stdout + res.stderr).split()
        wrk = " ".join(words[:2]) if words else "wrk"
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "memory": mem,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "wrk": wrk,
        "load average at start": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
        "code": code_version(),
    }


def code_version() -> str:
    """The commit measured, and whether the working tree differed from it."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        return "unknown"
    if not head:
        return "unknown"
    return head + (f" + uncommitted changes in {len(dirty)} file(s)" if dirty else "")


# --- processes ------------------------------------------------------------------


@dataclass
class Service:
    """A process started here in its own session, so its whole group can be stopped."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    log_file: Any

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(10)
        # The group may outlive its leader (workers of a killed master): finish them.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        if self.proc.poll() is None:
            self.proc.wait(5)
        self.log_file.close()


class RedisSide:
    """The benchmark's corner of a (possibly shared) Redis: one key prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        import redis  # only needed for this backend

        self.url = url
        self.prefix = prefix
        self.client = redis.Redis.from_url(url, socket_timeout=10)
        self.usage_events = 0  # seen in the stream (and trimmed) so far

    def cpu_us(self) -> float:
        """The whole Redis server's CPU so far (INFO cpu): other clients' work included."""
        info = self.client.info("cpu")
        return (float(info["used_cpu_user"]) + float(info["used_cpu_sys"])) * 1e6

    def scripts(self) -> tuple[int, float]:
        """Lua script calls (EVALSHA + EVAL) and their µs in Redis so far, whole server."""
        stats = self.client.info("commandstats")
        calls, usec = 0, 0.0
        for name in ("cmdstat_evalsha", "cmdstat_eval"):
            if name in stats:
                calls += int(stats[name]["calls"])
                usec += float(stats[name]["usec"])
        return calls, usec

    def drain_usage(self) -> int:
        """Count the usage events the gateway has written, then trim the stream.

        Nothing consumes the stream here, so it would otherwise grow by one
        entry per request in a Redis that others use."""
        time.sleep(0.2)  # a flush is due every 50 ms
        stream = f"{self.prefix}usage"
        n = int(self.client.xlen(stream))
        if n:
            self.client.xtrim(stream, maxlen=0, approximate=False)
        self.usage_events += n
        return n

    def keys(self, pattern: str = "*") -> list[bytes]:
        glob = re.sub(r"([*?\[\]\\])", r"\\\1", self.prefix) + pattern
        return list(self.client.scan_iter(match=glob, count=1000))

    def cleanup(self) -> int:
        """Delete every key under the prefix (SCAN + DEL); never FLUSHDB/FLUSHALL."""
        deleted = 0
        for _ in range(3):  # a late flush or nudge may add a key behind the scan
            keys = self.keys()
            if not keys:
                break
            for i in range(0, len(keys), 500):
                deleted += int(self.client.delete(*keys[i : i + 500]))
            time.sleep(0.2)
        return deleted


def redact(url: str) -> str:
    """The URL without any password in it (it goes into logs and the docs)."""
    return re.sub(r"//[^@/]*@", "//***@", url)


def redis_answers(url: str) -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping())
    except Exception:
        return False


@dataclass
class Harness:
    tmp: Path
    env: dict[str, str]
    services: list[Service] = field(default_factory=list)
    redis: RedisSide | None = None

    def start(self, name: str, argv: list[str]) -> Service:
        log_path = self.tmp / f"{name}.log"
        log_file = open(log_path, "wb")  # noqa: SIM115 - closed by Service.stop
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        svc = Service(name, proc, log_path, log_file)
        self.services.append(svc)
        return svc

    def stop_all(self) -> None:
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception as exc:  # keep stopping the others
                log(f"stopping {svc.name}: {exc}")
        self.services.clear()


def http_get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def http_post(
    url: str, data: str, headers: dict[str, str], timeout: float = 10.0
) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=data.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return int(exc.code), exc.read()


def wait_until(what: str, check: Any, svc: Service, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not svc.alive():
            raise BenchError(f"{svc.name} exited while waiting for {what}:\n{svc.tail()}")
        with contextlib.suppress(OSError):
            if check():
                return
        time.sleep(0.05)
    raise BenchError(f"timed out waiting for {what}:\n{svc.tail()}")


def run_checked(argv: list[str], env: dict[str, str], timeout: float, what: str) -> str:
    res = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if res.returncode != 0:
        raise BenchError(
            f"{what} failed ({res.returncode}):\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}"
        )
    return res.stdout


# --- load generators ------------------------------------------------------------

WRK_LUA = """\
-- Generated by bench/run.py.
wrk.method = "POST"
wrk.body = [==[{body}]==]
wrk.headers["x-api-key"] = "{key}"
wrk.headers["content-type"] = "application/json"
wrk.headers["anthropic-version"] = "2023-06-01"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT {{\\"requests\\": %d, \\"duration_us\\": %d, \\"bytes\\": %d, " ..
    "\\"connect\\": %d, \\"read\\": %d, \\"write\\": %d, \\"status\\": %d, \\"timeout\\": %d, " ..
    "\\"lat_p50_us\\": %d, \\"lat_p99_us\\": %d}}\\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    log(
        "wrk is not installed. Install it with:  sudo apt-get install -y wrk   (Debian/Ubuntu package 'wrk')"
    )
    if os.geteuid() == 0 and shutil.which("apt-get"):
        log("running as root: installing wrk with apt-get")
        res = subprocess.run(
            ["apt-get", "install", "-y", "wrk"], capture_output=True, text=True, timeout=300
        )
        if res.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True, timeout=300)
            subprocess.run(["apt-get", "install", "-y", "wrk"], capture_output=True, timeout=300)
        path = shutil.which("wrk")
        if path:
            return path
    raise BenchError("wrk is required for the throughput phases (apt-get install -y wrk)")


@dataclass
class Target:
    name: str  # "direct" | "gateway"
    url: str
    key: str
    pids: list[int]  # processes whose CPU is charged to this target
    tag: str = "plain"  # which key: "plain" | "governed"


def runq_wait_ns(pid: int) -> int:
    """Time the process's threads spent runnable but waiting for a CPU (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int((task / "schedstat").read_text().split()[1])
    return total


def cpu_snapshot(pids: list[int]) -> dict[int, tuple[int, int]]:
    return {pid: (cpu_ticks(pid), runq_wait_ns(pid)) for pid in pids}


def redis_cpu_before(h: Harness, target: Target) -> tuple[float, int, float] | None:
    if h.redis is None or target.name != "gateway":
        return None
    return (h.redis.cpu_us(), *h.redis.scripts())


def redis_cpu_after(
    h: Harness, before: tuple[float, int, float] | None, out: dict[str, Any], served: int
) -> None:
    """Redis server CPU and Lua script time per request over a gateway phase, and
    the usage events it took."""
    if h.redis is None or before is None:
        return
    cpu, calls, usec = h.redis.cpu_us(), *h.redis.scripts()
    out["redis_cpu_us_per_req"] = (cpu - before[0]) / served if served else None
    out["redis_script_calls_per_req"] = (calls - before[1]) / served if served else None
    out["redis_script_us_per_call"] = (
        (usec - before[2]) / (calls - before[1]) if calls > before[1] else None
    )
    out["usage_events"] = h.redis.drain_usage()


def cpu_us_since(before: dict[int, tuple[int, int]]) -> tuple[float, dict[int, float], float]:
    """CPU µs (utime+stime) in total and by pid, and run-queue wait µs, since ``before``."""
    per = {pid: (cpu_ticks(pid) - t[0]) * 1e6 / CLK_TCK for pid, t in before.items()}
    wait = sum(runq_wait_ns(pid) - t[1] for pid, t in before.items()) / 1000
    return sum(per.values()), per, wait


def run_wrk(
    h: Harness, wrk: str, target: Target, stream: bool, threads: int, conns: int, seconds: float
) -> dict[str, Any]:
    script = h.tmp / f"wrk-{target.name}-{target.tag}-{'stream' if stream else 'plain'}.lua"
    script.write_text(WRK_LUA.format(body=body(stream), key=target.key))
    argv = [
        wrk,
        f"-t{threads}",
        f"-c{conns}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        target.url + PATH,
    ]
    redis_before = redis_cpu_before(h, target)
    before = cpu_snapshot(target.pids)
    res = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    cpu_us, per_pid, wait_us = cpu_us_since(before)
    if res.returncode != 0:
        raise BenchError(f"wrk failed ({res.returncode}): {res.stderr[-2000:]}")
    m = re.search(r"^BENCH_RESULT (\{.*\})$", res.stdout, re.M)
    if not m:
        raise BenchError(f"no result from wrk:\n{res.stdout}\n{res.stderr}")
    out = json.loads(m.group(1))
    out["rps"] = out["requests"] / (out["duration_us"] / 1e6) if out["duration_us"] else 0.0
    errors = out["connect"] + out["read"] + out["write"] + out["status"] + out["timeout"]
    out["errors"] = errors
    out["cpu_us_per_req"] = cpu_us / out["requests"] if out["requests"] else None
    out["runq_wait_us_per_req"] = wait_us / out["requests"] if out["requests"] else None
    out["cpu_us_by_pid"] = {str(k): round(v) for k, v in per_pid.items()}
    out["argv"] = " ".join(argv[:5])
    redis_cpu_after(h, redis_before, out, out["requests"])
    if errors:
        log(
            f"  wrk {target.name}: {errors} errors (status {out['status']}, timeout {out['timeout']}, "
            f"connect {out['connect']}, read {out['read']}, write {out['write']})"
        )
    return out


def run_openloop(
    h: Harness, target: Target, stream: bool, rate: float, seconds: float, warmup: float
) -> dict[str, Any]:
    argv = [
        PY,
        str(BENCH / "openloop.py"),
        "--url",
        target.url + PATH,
        "--body",
        body(stream),
        "--header",
        f"x-api-key:{target.key}",
        "--header",
        "content-type:application/json",
        "--header",
        "anthropic-version:2023-06-01",
        "--rate",
        str(rate),
        "--duration",
        str(seconds),
        "--warmup",
        str(warmup),
        "--timeout",
        "10",
    ]
    redis_before = redis_cpu_before(h, target)
    before = cpu_snapshot(target.pids)
    out = json.loads(run_checked(argv, h.env, seconds + warmup + 60, "open-loop generator"))
    cpu_us, per_pid, wait_us = cpu_us_since(before)
    redis_cpu_after(h, redis_before, out, out["completed"])
    out["cpu_us_per_req"] = cpu_us / out["completed"] if out["completed"] else None
    out["runq_wait_us_per_req"] = wait_us / out["completed"] if out["completed"] else None
    out["cpu_us_by_pid"] = {str(k): round(v) for k, v in per_pid.items()}
    bad = out["scheduled"] - out["statuses"].get("200", 0)
    if bad:
        log(
            f"  open loop {target.name}: {bad} of {out['scheduled']} not 200 (statuses {out['statuses']}, errors {out['errors']})"
        )
    return out


# --- the run --------------------------------------------------------------------


@dataclass
class Plan:
    phase: float  # seconds per measured phase
    warmup: float
    rss_requests: int
    wrk_threads: int
    wrk_conns: int
    rate: float


@dataclass
class World:
    direct: Target
    gateway: Target  # the plain key
    governed: Target  # the key with budgets at every level and a rate limit
    gw: Service
    governed_org: int


def start_world(h: Harness) -> World:
    fake_port, gw_port = free_port(), free_port()
    fake = h.start("fake-anthropic", [PY, "-m", "tests.fakes.anthropic", "--port", str(fake_port)])
    fake_url = f"http://127.0.0.1:{fake_port}"
    wait_until("fake upstream", lambda: http_get(fake_url + "/v1/models", 1) in (200, 401), fake)

    log("migrating a throwaway SQLite database and seeding the world")
    run_checked(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"], h.env, 300, "manage.py migrate"
    )
    seeded = json.loads(
        run_checked(
            [PY, str(BENCH / "seed.py"), fake_url, PROVIDER_KEY, "--governed"],
            h.env,
            120,
            "seeding",
        )
        .strip()
        .splitlines()[-1]
    )
    secret, governed = seeded["secret"], seeded["governed_secret"]

    gw = h.start(
        "gateway",
        [
            PY,
            "-m",
            "uvicorn",
            "dataplane.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(gw_port),
            "--workers",
            str(WORKERS),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--timeout-graceful-shutdown",
            "5",
        ],
    )
    gw_url = f"http://127.0.0.1:{gw_port}"
    wait_until(
        "gateway workers",
        lambda: len(children(gw.proc.pid)) >= WORKERS and http_get(gw_url + "/readyz", 1) == 200,
        gw,
        60,
    )
    # Each worker answers readyz only once its snapshot is loaded; ask a few times
    # so both have been asked (the kernel spreads connections between them).
    for _ in range(20):
        if http_get(gw_url + "/readyz", 2) != 200:
            raise BenchError(f"gateway not ready:\n{gw.tail()}")
    workers = children(gw.proc.pid)
    if len(workers) != WORKERS:
        raise BenchError(
            f"expected {WORKERS} gateway workers under pid {gw.proc.pid}, found {workers}"
        )

    headers = {"content-type": "application/json", "anthropic-version": "2023-06-01"}
    for name, url, key in (
        ("direct", fake_url, PROVIDER_KEY),
        ("gateway", gw_url, secret),
        ("gateway, governed key", gw_url, governed),
    ):
        for stream in (False, True):
            status, payload = http_post(url + PATH, body(stream), headers | {"x-api-key": key})
            if status != 200 or (
                b"message_stop" not in payload
                if stream
                else b'"type":"message"' not in payload.replace(b" ", b"")
            ):
                raise BenchError(
                    f"sanity request {name} stream={stream} -> {status}: {payload[:500]!r}\n{gw.tail()}"
                )
    log(
        f"fake upstream pid {fake.proc.pid} on :{fake_port}; gateway master {gw.proc.pid}, workers {workers} on :{gw_port}"
    )
    return World(
        Target("direct", fake_url, PROVIDER_KEY, [fake.proc.pid]),
        Target("gateway", gw_url, secret, workers),
        Target("gateway", gw_url, governed, workers, tag="governed"),
        gw,
        int(seeded["governed_organization_id"]),
    )


def check_governed(h: Harness, world: World, n: int = 50) -> dict[str, Any]:
    """Before measuring: the governed key gets 200s (not 402/429), and, on Redis,
    its budgets and rate window are really counted (settlement has run)."""
    target = world.governed
    headers = {
        "content-type": "application/json",
        "anthropic-version": "2023-06-01",
        "x-api-key": target.key,
    }
    statuses: dict[int, int] = {}
    for _ in range(n):
        status, payload = http_post(target.url + PATH, body(False), headers)
        statuses[status] = statuses.get(status, 0) + 1
        if status != 200:
            raise BenchError(
                f"governed key answered {status} (budgets or rate limit refusing?): "
                f"{payload[:500]!r}\n{world.gw.tail()}"
            )
    out: dict[str, Any] = {"requests": n, "statuses": statuses}
    if h.redis is not None:
        time.sleep(0.2)
        out.update(governed_counters(h, world))
        if out["budget_counters"] != 4 or out["rate_windows"] < 1:
            raise BenchError(f"expected 4 budget counters and a rate window in Redis, found {out}")
        if not all(out["spent_nano"]):
            raise BenchError(f"a budget counter shows nothing spent after {n} requests: {out}")
    log(f"governed key: {n} requests, all 200 {out}")
    return out


def governed_counters(h: Harness, world: World) -> dict[str, Any]:
    """The governed organization's budget counters and rate windows in Redis."""
    assert h.redis is not None
    org = f"{{o{world.governed_org}}}:"
    budgets = sorted(k for k in h.redis.keys(f"{org}b:*") if not k.endswith(b":r"))
    spent = [int(h.redis.client.hget(k, "spent") or 0) for k in budgets]
    return {
        "budget_counters": len(budgets),
        "rate_windows": len(h.redis.keys(f"{org}w:*")),
        "spent_nano": spent,
    }


def scenario(
    h: Harness, wrk: str, plan: Plan, label: str, targets: tuple[Target, ...], stream: bool
) -> dict[str, Any]:
    res: dict[str, Any] = {"openloop": {}, "wrk": {}}
    for target in targets:
        log(
            f"{label}: {target.name}, open loop {plan.rate:g} rps for {plan.warmup:g}+{plan.phase:g} s"
        )
        res["openloop"][target.name] = run_openloop(
            h, target, stream, plan.rate, plan.phase, plan.warmup
        )
        time.sleep(0.5)
    for target in targets:
        log(
            f"{label}: {target.name}, wrk -t{plan.wrk_threads} -c{plan.wrk_conns} for {plan.phase:g} s"
        )
        res["wrk"][target.name] = run_wrk(
            h, wrk, target, stream, plan.wrk_threads, plan.wrk_conns, plan.phase
        )
        time.sleep(0.5)
    return res


def rss_phase(h: Harness, wrk: str, plan: Plan, gateway: Target, rps: float) -> dict[str, Any]:
    """Worker RSS before and after ``plan.rss_requests`` non-streaming requests.

    wrk has no request count, so it runs for the time the count takes at the
    rate just measured (plus 10%), and again for any shortfall, at most 4 runs
    and 150 s in all, so a machine that slowed down still ends.
    """
    before = {pid: rss_kib(pid) for pid in gateway.pids}
    log(
        f"RSS: {plan.rss_requests:,} non-streaming requests through the gateway (wrk, ~{rps:,.0f} rps)"
    )
    runs: list[dict[str, Any]] = []
    served, spent, cpu_us = 0, 0.0, 0.0
    while served < plan.rss_requests and len(runs) < 4 and spent < 150:
        seconds = min(150 - spent, max(2.0, 1.1 * (plan.rss_requests - served) / max(rps, 1.0)))
        run = run_wrk(h, wrk, gateway, False, plan.wrk_threads, plan.wrk_conns, seconds)
        runs.append(run)
        served += run["requests"]
        spent += run["duration_us"] / 1e6
        cpu_us += (run["cpu_us_per_req"] or 0) * run["requests"]
        rps = run["rps"] or rps
    if served < plan.rss_requests:
        log(f"  only {served:,} requests in {spent:.0f} s (the machine slowed down)")
    time.sleep(1.0)  # let the event flush and any in-flight work settle
    after = {pid: rss_kib(pid) for pid in gateway.pids}
    total = {
        "requests": served,
        "rps": served / spent if spent else 0.0,
        "errors": sum(r["errors"] for r in runs),
        "cpu_us_per_req": cpu_us / served if served else None,
        "runs": len(runs),
    }
    return {"before_kib": before, "after_kib": after, "requests": served, "wrk": total}


# --- report ---------------------------------------------------------------------


def governed_scenario(
    h: Harness, wrk: str, plan: Plan, world: World, scenarios: dict[str, Any], label: str
) -> dict[str, Any]:
    """The governed key through the gateway; its direct figures are the plain
    scenario's (same request, same upstream), not measured again."""
    plain = BUDGETS_OFF[label]
    res = scenario(h, wrk, plan, label, (world.governed,), plain == STREAMING)
    for kind in ("openloop", "wrk"):
        res[kind] = {"direct": scenarios[plain][kind]["direct"], **res[kind]}
    refused = {
        k: v
        for k, v in res["openloop"]["gateway"]["statuses"].items()
        if k in ("402", "429", "503")
    }
    if refused or res["wrk"]["gateway"]["status"]:
        log(
            f"  the governed key was refused during {label}: {refused}, "
            f"wrk non-2xx {res['wrk']['gateway']['status']}"
        )
    return res


def fmt(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "–" if not a or not b else f"{a / b:.2f}×"


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def table(results: dict[str, Any], plan: Plan) -> str:
    rate = f"{plan.rate:,.0f} rps"
    wrk_desc = f"wrk -t{plan.wrk_threads} -c{plan.wrk_conns}, {plan.phase:g} s"
    backend = results["backend"]
    on_redis = backend == "redis"
    lines = [
        f"| scenario | measure | direct | gateway ({backend} backend) | gateway − direct (ratio) | target |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]

    def diff(d: float | None, g: float | None) -> str:
        return "–" if d is None or g is None else f"{g - d:+,.2f} ({ratio(g, d)})"

    def cpu_target(label: str, v: float | None) -> str:
        limit = {PLAIN: TARGET_CPU_US, GOVERNED: TARGET_GOVERNED_CPU_US}.get(label)
        if limit is None:
            return ""
        return f"≤ {limit} µs: {verdict(v is not None and v <= limit)}"

    def sub(a: float | None, b: float | None) -> str:
        return "–" if a is None or b is None else f"{a - b:+,.0f}"

    scenarios = results["scenarios"]
    for label in (PLAIN, GOVERNED, STREAMING, GOVERNED_STREAMING):
        sc = scenarios[label]
        streaming = label in (STREAMING, GOVERNED_STREAMING)
        ol_d, ol_g = sc["openloop"]["direct"], sc["openloop"]["gateway"]
        wk_d, wk_g = sc["wrk"]["direct"], sc["wrk"]["gateway"]
        rows: list[tuple[str, str, str, str, str]] = []
        if streaming:
            for p in ("p50", "p99"):
                d, g = ol_d["ttfb_ms"][p], ol_g["ttfb_ms"][p]
                rows.append((f"first byte {p} @ {rate} (ms)", fmt(d), fmt(g), diff(d, g), ""))
        name = "full response" if streaming else "latency"
        for p in ("p50", "p99"):
            d, g = ol_d["latency_ms"][p], ol_g["latency_ms"][p]
            target = ""
            if p == "p99" and d is not None and g is not None:
                target = f"overhead ≤ {TARGET_P99_OVERHEAD_MS:g} ms: {verdict(g - d <= TARGET_P99_OVERHEAD_MS)}"
            rows.append((f"{name} {p} @ {rate} (ms)", fmt(d), fmt(g), diff(d, g), target))
        rows.append(
            (
                f"max throughput, {wrk_desc} (rps)",
                fmt(wk_d["rps"], 0),
                fmt(wk_g["rps"], 0),
                f"({ratio(wk_g['rps'], wk_d['rps'])})",
                "",
            )
        )
        cpu_ol, cpu_wk = ol_g["cpu_us_per_req"], wk_g["cpu_us_per_req"]
        rows.append(
            (
                f"CPU per request @ {rate} (µs)",
                fmt(ol_d["cpu_us_per_req"], 0),
                fmt(cpu_ol, 0),
                "",
                cpu_target(label, cpu_ol),
            )
        )
        rows.append(
            (
                "CPU per request at max throughput (µs)",
                fmt(wk_d["cpu_us_per_req"], 0),
                fmt(cpu_wk, 0),
                "",
                cpu_target(label, cpu_wk),
            )
        )
        if label in BUDGETS_OFF:
            off = scenarios[BUDGETS_OFF[label]]
            for where, on_v, off_v in (
                (f"@ {rate}", cpu_ol, off["openloop"]["gateway"]["cpu_us_per_req"]),
                ("at max throughput", cpu_wk, off["wrk"]["gateway"]["cpu_us_per_req"]),
            ):
                rows.append(
                    (
                        f"admission + settlement CPU {where}, budgets on − off (µs)",
                        "–",
                        sub(on_v, off_v),
                        "",
                        "reported",
                    )
                )
        if on_redis:
            rows.append(
                (
                    f"Redis server CPU per request @ {rate} (µs, whole shared server)",
                    "–",
                    fmt(ol_g.get("redis_cpu_us_per_req"), 0),
                    "",
                    "reported",
                )
            )
        for row in rows:
            lines.append(f"| {label} | " + " | ".join(row) + " |")
    rss = results["rss"]
    for i, pid in enumerate(rss["before_kib"]):
        b, a = rss["before_kib"][pid], rss["after_kib"][pid]
        fresh = results["rss_fresh_kib"][pid]
        lines.append(
            f"| memory | worker {i + 1} RSS before → after {rss['requests']:,} requests (MiB; fresh {fresh / 1024:.1f}) | – | "
            f"{b / 1024:.1f} → {a / 1024:.1f} | {(a - b) / 1024:+.1f} | reported |"
        )
    return "\n".join(lines)


def notes(results: dict[str, Any]) -> str:
    out = []
    for label, sc in results["scenarios"].items():
        for name in ("direct", "gateway"):
            if label in BUDGETS_OFF and name == "direct":
                continue  # the plain scenario's direct figures, not measured again
            ol = sc["openloop"][name]
            wk = sc["wrk"][name]
            bad = ol["scheduled"] - ol["statuses"].get("200", 0)
            statuses = "" if not bad else f" (statuses {ol['statuses']}, errors {ol['errors']})"
            redis_cpu = ""
            if "redis_cpu_us_per_req" in wk:
                scripts = ""
                # (a few calls per phase from other clients of a shared server are not ours)
                if (
                    wk.get("redis_script_us_per_call") is not None
                    and wk["redis_script_calls_per_req"] >= 0.5
                ):
                    scripts = (
                        f", of which Lua scripts {wk['redis_script_calls_per_req']:.2f} calls per request "
                        f"at {wk['redis_script_us_per_call']:.1f} µs each"
                    )
                redis_cpu = (
                    f"; Redis server CPU {fmt(wk['redis_cpu_us_per_req'], 0)} µs per request at max "
                    f"throughput{scripts}; usage events in the stream {ol['usage_events']:,} (open loop) and "
                    f"{wk['usage_events']:,} (wrk)"
                )
            out.append(
                f"- {label}, {name}: open loop sent {ol['scheduled']:,} ({ol['measured']:,} measured, {bad} not 200{statuses}, "
                f"scheduler at most {ol['max_scheduler_lag_ms']:.1f} ms late), latency p99.9 "
                f"{fmt(ol['latency_ms']['p99.9'])} ms, max {fmt(ol['latency_ms']['max'])} ms; its processes waited "
                f"{fmt(ol['runq_wait_us_per_req'], 0)} µs per request for a CPU (run queue); wrk served "
                f"{wk['requests']:,} ({wk['errors']} errors, {wk['status']} non-2xx); CPU µs by pid at max throughput: "
                f"{wk['cpu_us_by_pid']}{redis_cpu}"
            )
    for label, sc in results["scenarios"].items():
        ceiling = sc["wrk"]["gateway"]["rps"]
        if ceiling and ceiling < 1.1 * results["plan"]["rate"]:
            out.append(
                f"- {label}: the offered {results['plan']['rate']:,.0f} rps is "
                f"{'above' if ceiling < results['plan']['rate'] else 'within 10% of'} what the gateway "
                f"served at max throughput ({ceiling:,.0f} rps), so its latency @ {results['plan']['rate']:,.0f} rps "
                "is mostly queueing (the backlog grows through the phase), not per-request overhead"
            )
    gov = results.get("governed_check", {})
    if gov:
        line = f"- governed key, before measuring: {gov['requests']} requests, statuses {gov['statuses']}"
        end = results.get("governed_end")
        if end:
            spent = ", ".join(f"${n / 1e9:,.4f}" for n in end["spent_nano"])
            line += (
                f"; after the run Redis held {end['budget_counters']} budget counters (spent {spent}) "
                f"and {end['rate_windows']} rate window(s) for its organization"
            )
        out.append(line)
    rss = results["rss"]["wrk"]
    out.append(
        f"- memory phase: {rss['requests']:,} requests at {rss['rps']:,.0f} rps, {rss['errors']} errors, "
        f"gateway CPU {fmt(rss['cpu_us_per_req'], 0)} µs per request ({rss['runs']} wrk run(s))"
    )
    if "usage_events" in results:
        served = results["rss"]["requests"] + results["governed_check"]["requests"]
        for sc in results["scenarios"].values():
            served += sc["wrk"]["gateway"]["requests"] + sc["openloop"]["gateway"]["completed"]
        out.append(
            f"- Redis: {results['usage_events']:,} usage events reached the stream `{results['redis_prefix']}usage` "
            f"for about {served:,} requests counted through the gateway "
            f"(trimmed after each phase; no log writer runs here); {results.get('redis_keys_deleted', '?')} keys "
            f"under the prefix deleted at the end"
        )
    return "\n".join(out)


DOC_HEADER = """\
# Data-plane benchmarks

`make bench` (or `.venv/bin/python bench/run.py`; `--quick` for a smoke run
that writes nothing here) measures the data plane against a direct call to the
same upstream, on one machine, all on 127.0.0.1:

- **upstream**: the fake Anthropic API (`tests/fakes/anthropic.py`, aiohttp,
  one process), answering `POST /v1/messages` with a short message, or with
  its SSE event sequence when the body says `"stream": true`;
- **gateway**: `uvicorn dataplane.asgi:application --workers 2 --loop uvloop
  --http httptools --no-access-log`, with a provider and two virtual keys
  created through `governance.services` in a throwaway SQLite database
  (`bench/seed.py`);
- **backend** (`--backend`, named in the results' heading and table):
  *embedded* (file snapshot, usage events to spool files, budget and rate
  counters in each worker's memory) or *redis* (snapshot, usage events and
  counters in Redis; the default when `REDIS_URL` is set or
  `redis://127.0.0.1:6379/0` answers). The run uses its own key prefix
  (`TOLLGATE_REDIS_PREFIX=tgbench-<random>:`), trims the usage stream between
  phases since no log writer consumes it here, and deletes every key under the
  prefix at the end (SCAN + DEL: the Redis may be shared);
- **request**: `{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[{"role":"user","content":"hi"}]}`
  with `x-api-key` (the provider key directly, a virtual key through the
  gateway), `content-type` and `anthropic-version`.

Scenarios:

- **non-streaming** and **streaming** use the *plain* key: no budgets, no
  rate limits, so no admission or settlement step;
- **non-streaming, budgets on** and **streaming, budgets on** use the *governed*
  key, in an organization,
  team and user of its own: a monthly USD budget at each of the four levels
  (organization, team, user, key) and a request-rate limit on the key, all far
  out of reach, so every request is admitted (one atomic check and reservation
  across four budgets and one window) and settled (four reservations replaced
  by the actual cost); a stream also runs the meter that tops the reservation
  up when the output outgrows it (the Lua scripts per request in the details
  count those top-ups). The run checks it answers 200, not 402/429, before
  measuring. Their *direct* figures are the plain scenario's (same request,
  same upstream), and the rows *budgets on − off* give the admission +
  settlement CPU as the difference from the plain gateway rows.

How to read the table:

- **latency @ 1,000 rps** comes from an open-loop generator
  (`bench/openloop.py`, a bare keep-alive HTTP/1.1 client on asyncio and
  httptools, in its own process): requests are sent on a
  fixed schedule whatever the responses do, and each latency runs from the
  request's *scheduled* time, so stalls are not hidden (no coordinated
  omission). The first second is warm-up and not counted. *gateway − direct*
  is the overhead the gateway adds; for streaming, *first byte* is the time to
  the first body bytes (`message_start`) and *full response* to the last.
- **max throughput** is `wrk` (closed loop, fixed connections). The load
  generator, the upstream and the gateway share the same cores, so this is
  the machine's ceiling for the whole set-up, not the gateway's alone; the
  ratio to direct is the useful part.
- **gateway CPU per request** is the user+system CPU time of the two worker
  processes (`/proc/<pid>/stat`) during a phase divided by the requests
  served in it; in the *direct* column it is the fake upstream's, for scale.
  At 1,000 rps it is higher than at max throughput: a lightly loaded worker
  wakes up and makes its system calls for each request alone, a saturated one
  handles several per wake-up. The targets (400 µs plain, 300 µs with budgets
  on) are shown against both.
- **Redis server CPU** (redis backend) is the Redis server's user+system CPU
  (`INFO cpu`) over a gateway phase divided by its requests: the share of the
  admission, settlement and usage-event cost that the worker CPU does not
  show. The server may be shared, so other clients' work is in it too.
- When the offered 1,000 rps is above what a scenario's gateway served at max
  throughput, its latency at 1,000 rps is a backlog growing through the phase,
  not per-request overhead; the details below the table say so when it happens.
- **run-queue wait** (details below the table, from `/proc/<pid>/task/*/schedstat`)
  is how long the measured processes were ready to run but had no CPU, per
  request: on a machine this small it is where most of the p99 comes from.
- **RSS** is each worker's `VmRSS` before and after the memory phase (the
  latency and throughput phases run first, so *before* is a warm worker;
  *fresh* is right after start). Steady growth across runs of that phase
  would be a leak; a few MiB of allocator and cache growth is not.

The machines are shared and noisy: the table is one run, not a median of
several. Compare ratios and overheads rather than absolute numbers, and rerun
before concluding anything from a difference of a few per cent.

"""


def write_doc(text: str) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    head = DOC_HEADER
    if DOC.exists():
        current = DOC.read_text()
        if RESULTS_MARKER in current:
            head = current.split(RESULTS_MARKER, 1)[0]
    DOC.write_text(head + RESULTS_MARKER + "\n\n" + text)


def report(results: dict[str, Any], plan: Plan, facts: dict[str, str], quick: bool) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts_line = "; ".join(f"{k}: {v}" for k, v in facts.items())
    backend = results["backend"]
    title = f"## Results: {backend} backend" + (
        " (quick smoke run: short phases, not for comparison)" if quick else ""
    )
    where = (
        f"snapshot, usage events and counters in Redis ({results['redis_url']}, "
        f"prefix `{results['redis_prefix']}`)"
        if backend == "redis"
        else "file snapshot, usage events to spool files, counters in process"
    )
    return (
        f"{title}\n\n{when}. {facts_line}. Gateway: {WORKERS} uvicorn workers, {backend} backend: {where}. "
        f"Phases: {plan.warmup:g} s warm-up + {plan.phase:g} s measured.\n\n"
        f"{table(results, plan)}\n\nDetails:\n\n{notes(results)}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="short smoke run (2 s phases, 5k requests for RSS); does not write docs/",
    )
    parser.add_argument(
        "--docs", action="store_true", help="write docs/benchmarks.md even with --quick"
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary directory (logs, spool)"
    )
    parser.add_argument(
        "--backend",
        choices=("embedded", "redis"),
        help="embedded (files, in-process counters) or redis; default: redis when REDIS_URL "
        f"is set or {DEFAULT_REDIS_URL} answers PING, else embedded",
    )
    args = parser.parse_args()

    if args.quick:
        plan = Plan(phase=2, warmup=0.5, rss_requests=5_000, wrk_threads=2, wrk_conns=16, rate=RATE)
    else:
        plan = Plan(phase=8, warmup=1, rss_requests=100_000, wrk_threads=2, wrk_conns=16, rate=RATE)

    redis_url = os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL
    backend = args.backend
    if backend is None:
        backend = "redis" if os.environ.get("REDIS_URL") or redis_answers(redis_url) else "embedded"
        how = "chosen: REDIS_URL is set" if os.environ.get("REDIS_URL") else "chosen"
    else:
        how = "asked for"
    if backend == "redis" and not redis_answers(redis_url):
        log(f"backend redis: {redact(redis_url)} does not answer PING")
        return 1
    log(f"backend: {backend} ({how})" + (f", {redact(redis_url)}" if backend == "redis" else ""))

    wrk = ensure_wrk()
    facts = machine_facts()

    def on_term(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)

    tmp = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "TOLLGATE_SECRET_KEY": SECRET_KEY,
        "TOLLGATE_DATA_DIR": str(tmp),
        "DATABASE_URL": f"sqlite:///{tmp / 'bench.sqlite3'}",
        "REDIS_URL": "",  # embedded: file snapshot, spool files, in-process counters
        "TOLLGATE_COUNTERS_REDIS_URL": "",  # never inherit a counter store from the caller
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    h = Harness(tmp, env)
    results: dict[str, Any] = {
        "backend": backend,
        "plan": plan.__dict__,
        "facts": facts,
        "scenarios": {},
    }
    if backend == "redis":
        h.redis = RedisSide(redis_url, f"tgbench-{secrets.token_hex(4)}:")
        env.update(
            REDIS_URL=redis_url,
            TOLLGATE_COUNTERS_REDIS_URL=redis_url,
            TOLLGATE_REDIS_PREFIX=h.redis.prefix,
        )
        results.update(redis_url=redact(redis_url), redis_prefix=h.redis.prefix)
        log(f"Redis key prefix {h.redis.prefix}")
    started = time.monotonic()
    try:
        world = start_world(h)
        direct, gateway, gw = world.direct, world.gateway, world.gw
        results["rss_fresh_kib"] = {pid: rss_kib(pid) for pid in gateway.pids}
        scenarios = results["scenarios"]
        scenarios[PLAIN] = scenario(h, wrk, plan, PLAIN, (direct, gateway), False)
        results["governed_check"] = check_governed(h, world)
        scenarios[GOVERNED] = governed_scenario(h, wrk, plan, world, scenarios, GOVERNED)
        if not gw.alive():
            raise BenchError(f"gateway died:\n{gw.tail()}")
        scenarios[STREAMING] = scenario(h, wrk, plan, STREAMING, (direct, gateway), True)
        if not gw.alive():
            raise BenchError(f"gateway died:\n{gw.tail()}")
        scenarios[GOVERNED_STREAMING] = governed_scenario(
            h, wrk, plan, world, scenarios, GOVERNED_STREAMING
        )
        if not gw.alive():
            raise BenchError(f"gateway died:\n{gw.tail()}")
        rps = scenarios[PLAIN]["wrk"]["gateway"]["rps"]
        results["rss"] = rss_phase(h, wrk, plan, gateway, rps)
        if h.redis is not None:
            results["governed_end"] = governed_counters(h, world)
            h.redis.drain_usage()
            results["usage_events"] = h.redis.usage_events
        if children(gw.proc.pid) != gateway.pids:
            raise BenchError(
                f"gateway workers changed during the run ({gateway.pids} → {children(gw.proc.pid)}): a worker restarted\n{gw.tail()}"
            )
        if "Traceback" in gw.log_path.read_text(errors="replace"):
            log(f"the gateway logged a traceback:\n{gw.tail()}")
    except KeyboardInterrupt:
        log("interrupted; stopping everything started here")
        return 130
    except BenchError as exc:
        log(f"failed: {exc}")
        return 1
    finally:
        h.stop_all()
        if h.redis is not None:
            try:
                results["redis_keys_deleted"] = h.redis.cleanup()
                log(f"deleted {results['redis_keys_deleted']} Redis keys under {h.redis.prefix}")
            except Exception as exc:  # report it; the prefix says what to delete by hand
                log(f"could not delete the Redis keys under {h.redis.prefix}: {exc}")
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    text = report(results, plan, facts, args.quick)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if (not args.quick or args.docs) and not args.no_docs:
        write_doc(text)
        log(f"wrote {DOC.relative_to(ROOT)}")
    log(f"done in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
