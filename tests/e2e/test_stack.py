"""`ascep up` as a whole: what it refuses before it starts anything."""
from __future__ import annotations

import http.client
import json
import subprocess
import sys
import urllib.error
import urllib.request

import psutil

from ascep.services import free_port


def test_a_second_stack_on_the_same_state_directory_is_refused(start_stack, tmp_path):
    stack = start_stack("--source", "none")
    second = subprocess.run([sys.executable, "-m", "ascep.cli", "up", "--port", str(free_port()), "--source", "none"],
                            cwd=tmp_path, env=stack.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"is in use by another `ascep up` (pid {stack.proc.pid})" in second.stderr
    assert stack.proc.poll() is None, "the first stack must go on"
    assert json.loads((tmp_path / ".ascep" / "stack.json").read_text())["kafka"] == stack.info["kafka"]


def flink_rest_sockets(stack) -> list:
    """The listening sockets of the stack's Flink JVM that answer Flink's REST API."""
    java = [p for p in psutil.Process(stack.proc.pid).children(recursive=True) if p.name() == "java"]
    found = []
    for proc in java:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_LISTEN:
                continue
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{conn.laddr.port}/config", timeout=3) as reply:
                    if "flink-version" in json.load(reply):
                        found.append(conn)
            except (OSError, ValueError, http.client.HTTPException):  # another JVM port, not HTTP
                continue
    return found


def test_the_flink_rest_api_listens_on_this_machine_only_and_takes_no_jars(start_stack):
    stack = start_stack("--source", "none")
    rest = flink_rest_sockets(stack)
    assert len(rest) == 1, rest
    assert rest[0].laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1")
    upload = urllib.request.Request(f"http://127.0.0.1:{rest[0].laddr.port}/jars/upload", data=b"", method="POST")
    try:
        urllib.request.urlopen(upload, timeout=5)
        raise AssertionError("the REST API accepted a jar upload")
    except urllib.error.HTTPError as refused:
        assert refused.code == 404
