"""docker-compose.yml's product services, run here as local processes, reach signals on the dashboard.

No Docker engine runs here, so the images cannot start. What this runs instead is what compose would run in
them: each service built from the product image runs its `command` after the image's entry point (`ascep`), with
the image's ENV and the service's `environment`, in dependency order, waiting as its `depends_on` conditions say
(a one-shot to complete successfully, a service to pass its own `healthcheck`). The third-party services are
played by the servers the other tests use: Kafka by the embedded Tansu broker, Redis by redis-server, the S3
store by moto, the Flink session cluster by a standalone cluster from pyflink/bin. Their compose host names and
ports in the commands and environment become these servers' 127.0.0.1 addresses, and the volumes' paths become
folders under tmp_path; anything else in the file reaches the processes as written, so a wrong command, flag,
setting or dependency in docker-compose.yml fails here.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import get_args
from urllib.parse import urlparse

import boto3
import pytest
from compose_testing import (
    PRODUCT_TARGET,
    ROOT,
    built_from,
    depends_on,
    dockerfile_stages,
    environment,
    exec_form,
    image_env,
    json_or_shell,
    services,
)

from ascep.services import flink_rest, free_port, start_broker, start_flink_cluster, start_redis
from core.contracts.signal import SignalType
from core.settings import Settings
from flink_jobs.launcher import python_env

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DEADLINE_S = 240  # for the whole start and the first signal, on a busy machine


class Compose:
    """The product services of docker-compose.yml as local processes, and the servers standing in for the rest."""

    def __init__(self, tmp_path: Path, addresses: dict[str, str], flink: Future) -> None:
        self.specs = services()
        self.product = {name: spec for name, spec in self.specs.items()
                        if built_from(spec) == PRODUCT_TARGET and not spec.get("profiles")}
        [dockerfile] = {ROOT / spec["build"]["context"] / spec["build"]["dockerfile"] for spec in self.product.values()}
        self.stage = dockerfile_stages(dockerfile)[PRODUCT_TARGET]
        self.tmp, self.logs, self.addresses, self.flink = tmp_path, tmp_path / "logs", addresses, flink
        self.procs: dict[str, subprocess.Popen] = {}
        self.published_port = free_port()

    def local(self, name: str, value: str) -> str:
        """`value` as it must read here: compose addresses -> local servers, volume and image paths -> tmp_path."""
        for address, here in self.addresses.items():
            value = value.replace(address, here)
        for published in self.specs[name].get("ports", []):  # the service's own port, as its healthcheck reaches it
            value = value.replace(f"127.0.0.1:{published.rsplit(':', 1)[-1]}", f"127.0.0.1:{self.published_port}")
        paths = {self.volume_path(volume): target for volume, target in self.mounts(name).items()}
        workdir = self.stage.last("WORKDIR")
        if workdir:
            paths[str(self.tmp / "services" / name)] = workdir[1]
        for here, there in sorted(paths.items(), key=lambda item: -len(item[1])):
            value = value.replace(there, here)
        left = [other for other in self.specs if re.search(rf"(?<![\w.-]){re.escape(other)}:\d+", value)]
        assert not left, f"services.{name}: {value!r} names {left}, which this test does not stand in for"
        return value

    def mounts(self, name: str) -> dict[str, str]:
        """volume -> path in the container, for the service's named volumes."""
        out = {}
        for volume in self.specs[name].get("volumes", []):
            source, target = volume.split(":")[:2] if isinstance(volume, str) else (volume["source"], volume["target"])
            out[source] = target
        return out

    def volume_path(self, volume: str) -> str:
        path = self.tmp / "volumes" / volume
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def env(self, name: str) -> dict[str, str]:
        base = {key: value for key, value in python_env().items() if not key.startswith("ASCEP_")}
        image = {key: value for key, value in image_env(self.stage).items() if key != "PATH"}
        env = {**base, **{key: self.local(name, value) for key, value in {**image, **environment(self.specs[name])}
                          .items()}}
        if self.specs[name].get("ports"):  # a published port: here it is a free one, on loopback only
            [published] = self.specs[name]["ports"]
            assert published.rsplit(":", 1)[-1] == str(Settings().dashboard.port) and name == "dashboard", \
                f"services.{name}: publishes {published}; this test knows only the dashboard's"
            env.update(ASCEP_DASHBOARD__HOST="127.0.0.1", ASCEP_DASHBOARD__PORT=str(self.published_port))
        return env

    def argv(self, name: str, what: str, value) -> list[str]:
        return [self.local(name, word) for word in exec_form(value, f"services.{name}.{what}")]

    def start(self, name: str) -> None:
        for other, condition in depends_on(self.specs[name]).items():
            self.wait_for(other, condition, name)
        entrypoint = self.argv(name, "entrypoint", self.specs[name]["entrypoint"]) if "entrypoint" in \
            self.specs[name] else json_or_shell(self.stage.last("ENTRYPOINT")[1])
        assert entrypoint == ["ascep"], f"services.{name}: entry point {entrypoint}; this test runs `ascep` only"
        argv = [sys.executable, "-m", "ascep.cli", *self.argv(name, "command", self.specs[name]["command"])]
        cwd = Path(self.local(name, self.stage.last("WORKDIR")[1]))
        cwd.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        with open(self.logs / f"{name}.log", "ab") as log:
            self.procs[name] = subprocess.Popen(argv, cwd=cwd, env=self.env(name), stdout=log, stderr=subprocess.STDOUT,
                                                stdin=subprocess.DEVNULL, start_new_session=True)

    def users(self, *args: str, stdin: str | None = None) -> str:
        """`docker compose exec dashboard ascep users ...`: in the dashboard's environment and volumes."""
        done = subprocess.run([sys.executable, "-m", "ascep.cli", "users", *args], env=self.env("dashboard"),
                              cwd=self.local("dashboard", self.stage.last("WORKDIR")[1]), input=stdin, text=True,
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else "(no log)"

    def wait_for(self, other: str, condition: str, waiting: str) -> None:
        deadline = time.monotonic() + DEADLINE_S
        if other not in self.product:  # a third-party service, played by a local server
            if other in ("jobmanager", "taskmanager"):
                self.addresses["jobmanager:8081"] = self.flink.result(timeout=DEADLINE_S).address
            return
        proc = self.procs[other]
        if condition == "service_completed_successfully":
            code = proc.wait(timeout=DEADLINE_S)
            assert code == 0, f"{waiting} waits for {other} to complete; it exited {code}:\n{self.log(other)}"
        elif condition == "service_healthy":
            test = self.argv(other, "healthcheck.test", self.specs[other]["healthcheck"]["test"])
            kind, test = test[0], test[1:]
            argv = ["sh", "-c", *test] if kind == "CMD-SHELL" else test
            argv = [sys.executable if word == "python" else word for word in argv]
            while subprocess.run(argv, capture_output=True, timeout=30).returncode != 0:
                assert proc.poll() is None, f"{other} exited {proc.returncode}, never healthy:\n{self.log(other)}"
                assert time.monotonic() < deadline, f"{other} not healthy after {DEADLINE_S} s:\n{self.log(other)}"
                time.sleep(0.5)

    def order(self) -> list[str]:
        """The product services, each after the product services it depends on."""
        done: list[str] = []

        def visit(name: str, path: tuple[str, ...]) -> None:
            assert name not in path, f"depends_on cycle: {' -> '.join((*path, name))}"
            if name in done:
                return
            for other in depends_on(self.specs[name]):
                if other in self.product:
                    visit(other, (*path, name))
            done.append(name)
        for name in self.product:
            visit(name, ())
        return done

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


def test_the_compose_product_services_run_here_and_signals_reach_the_dashboard(tmp_path, s3, monkeypatch):
    specs = services()
    flink_env = environment(specs["taskmanager"])
    slots = int(re.search(r"taskmanager\.numberOfTaskSlots:\s*(\d+)", flink_env["FLINK_PROPERTIES"]).group(1))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):  # the lake archivers run in the TMs
        monkeypatch.setenv(name, flink_env[name])
    with ExitStack() as stack:
        pool = stack.enter_context(ThreadPoolExecutor(1))
        flink = pool.submit(start_flink_cluster, tmp_path / "flink-logs", slots)  # the slowest: started first

        def stop_flink() -> None:
            if flink.exception(timeout=DEADLINE_S) is None:
                flink.result().stop()
        stack.callback(stop_flink)
        broker = start_broker(tmp_path / "logs")
        stack.callback(broker.stop)
        store = start_redis(tmp_path / "logs")
        stack.callback(store.stop)
        # The compose network's addresses of the third-party services; the JobManager's once the cluster is up.
        addresses = {"kafka:9092": broker.address, "redis:6379": urlparse(store.address).netloc,
                     "s3:8333": urlparse(s3.endpoint).netloc}
        compose = Compose(tmp_path, addresses, flink)
        stack.callback(compose.stop)
        assert set(compose.order()) >= {"setup", "job", "dashboard", "sim"}, compose.order()
        for name in compose.order():
            compose.start(name)

        one_shots = [name for name in compose.product if compose.specs[name].get("restart", "no") == "no"]
        for name in one_shots:  # those nothing waited for (the job's submitter) must complete too
            code = compose.procs[name].wait(timeout=DEADLINE_S)
            assert code == 0, f"{name} exited {code}:\n{compose.log(name)}"
        assert "Job has been submitted with JobID" in compose.log("job")
        for name in set(compose.product) - set(one_shots):
            assert compose.procs[name].poll() is None, f"{name} exited:\n{compose.log(name)}"

        dashboard = f"http://127.0.0.1:{compose.published_port}"
        with pytest.raises(urllib.error.HTTPError, match="401"):  # the compose file lets nobody read anonymously
            get_json(f"{dashboard}/api/signals", token="")
        # The first editor as the compose file says to make it, then a token for this test's reads.
        compose.users("create", "admin", "--role", "editor", "--password-stdin", stdin="first editor's passphrase\n")
        token = compose.users("token", "create", "admin")
        deadline = time.monotonic() + DEADLINE_S
        while not (signals := get_json(f"{dashboard}/api/signals?limit=5", token)["signals"]):
            assert compose.procs["sim"].poll() is None, f"the simulated market exited:\n{compose.log('sim')}"
            assert time.monotonic() < deadline, (f"no signal on the dashboard after {DEADLINE_S} s; job:\n"
                                                 f"{compose.log('job')}\nsim:\n{compose.log('sim')}")
            time.sleep(1)
        assert {signal["type"] for signal in signals} <= set(get_args(SignalType)), signals

        # Another `docker compose up` starts the one-shot submitter again: it must leave the running job alone.
        compose.start("job")
        assert compose.procs["job"].wait(timeout=DEADLINE_S) == 1, compose.log("job")
        assert "already runs ascep-signals" in compose.log("job")
        jobs = flink_rest(flink.result().address, "/jobs/overview")["jobs"]
        assert [(job["name"], job["state"]) for job in jobs] == [("ascep-signals", "RUNNING")]

        bucket, _, prefix = environment(specs["job"])["ASCEP_LAKE"].removeprefix("s3://").partition("/")
        client = boto3.client("s3", endpoint_url=s3.endpoint, region_name="us-east-1")
        deadline = time.monotonic() + 90  # the archivers make the lake durable every lake_options.flush_every_s
        while not client.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/").get("KeyCount"):
            assert time.monotonic() < deadline, f"nothing in the lake's bucket {bucket}, under {prefix}/"
            time.sleep(1)
