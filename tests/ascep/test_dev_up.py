"""`./dev up` checks the dashboard's port before it installs anything: the first install takes minutes.

Each test runs a copy of `dev` in a directory of its own, with a Python that logs how it is called, so an
install (`-m venv`, `-m pip`) would show, and none can touch the project's own virtualenv.
"""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from ascep.services import free_port

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev(tmp_path):
    shutil.copy(ROOT / "dev", tmp_path / "dev")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    calls = tmp_path / "python-calls"
    python = tmp_path / "python"
    python.write_text(f'#!/bin/sh\necho "$@" >> {calls}\nexec {sys.executable} "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        clean = {k: v for k, v in os.environ.items() if not k.upper().startswith("ASCEP_")}
        return subprocess.run([str(tmp_path / "dev"), "up", *args], env={**clean, "PYTHON": str(python), **env},
                              capture_output=True, text=True, timeout=60)
    run.calls = calls
    run.dir = tmp_path
    return run


@pytest.fixture
def taken():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


def installed_nothing(dev) -> bool:
    called = dev.calls.read_text()
    return "-m venv" not in called and "-m pip" not in called and not (dev.dir / ".venv").exists()


def test_a_taken_port_from_the_flag_stops_it_before_the_install(dev, taken):
    done = dev("--port", str(taken), "--source", "none")
    assert done.returncode == 1
    assert f"dev: the dashboard port {taken} on 127.0.0.1 (--port) is in use" in done.stderr
    assert "./dev up --port N" in done.stderr
    assert installed_nothing(dev)


def test_the_environment_and_the_settings_file_name_the_port_too(dev, taken, tmp_path):
    done = dev(ASCEP_DASHBOARD__PORT=str(taken))
    assert done.returncode == 1 and f"port {taken} on 127.0.0.1 (ASCEP_DASHBOARD__PORT) is in use" in done.stderr
    config = tmp_path / "ascep.toml"
    config.write_text(f"[dashboard]\nport = {taken}\n")
    done = dev(ASCEP_CONFIG=str(config))
    assert done.returncode == 1 and f"(dashboard.port in {config}) is in use" in done.stderr
    done = dev(f"--port={taken}", ASCEP_DASHBOARD__PORT=str(free_port()))  # the flag is stronger than the rest
    assert done.returncode == 1 and f"port {taken} on 127.0.0.1 (--port) is in use" in done.stderr
    assert installed_nothing(dev)


def test_a_port_that_is_no_number_is_named(dev):
    done = dev("--port", "80a")
    assert done.returncode == 1 and "dev: the dashboard port '80a' (--port) is not a port number" in done.stderr
    assert installed_nothing(dev)


def test_a_free_port_goes_on_to_the_install_and_ascep_up(dev):
    """The install is taken as done (its stamp), so `ascep up` is reached: here a stand-in that says how it was
    called, since the real one is tested on its own (tests/e2e)."""
    sha = subprocess.run(["sha1sum", str(dev.dir / "pyproject.toml")], capture_output=True, text=True).stdout[:12]
    bin_dir = dev.dir / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (dev.dir / ".venv" / f".installed-{sha}").touch()
    ascep = bin_dir / "ascep"
    ascep.write_text('#!/bin/sh\necho "ascep $@"\n')
    ascep.chmod(ascep.stat().st_mode | stat.S_IXUSR)
    port = free_port()
    done = dev("--port", str(port), "--source", "none")
    assert (done.returncode, done.stdout) == (0, f"ascep up --port {port} --source none\n"), done.stderr
