"""`ascep up` as a whole: what it refuses before it starts anything."""
from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import stat
import subprocess
import sys
from pathlib import Path

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


def test_ascep_config_shows_the_running_stacks_addresses_and_port_and_where_they_come_from(start_stack, tmp_path):
    stack = start_stack("--source", "none")
    done = subprocess.run([sys.executable, "-m", "ascep.cli", "config", "--json"], cwd=tmp_path, env=stack.env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    at_stack = f"running stack {Path('.ascep') / 'stack.json'} (pid {stack.proc.pid})"
    assert (shown["settings"]["kafka"], shown["sources"]["kafka"]) == (stack.info["kafka"], at_stack)
    assert (shown["settings"]["dashboard"]["port"], shown["sources"]["dashboard.port"]) == (stack.port, at_stack)
    assert shown["sources"]["redis"] == shown["sources"]["lake"] == at_stack
    assert shown["sources"]["job.partitions"] == "default"


def flink_rest_sockets(stack) -> list:
    """The listening sockets of the stack's Flink JVM that present the REST API's certificate, the one the job
    made at start (.ascep/tls): TLS 1.3, verified against that certificate, for the address 127.0.0.1."""
    expected = ssl.PEM_cert_to_DER_cert((stack.workdir / ".ascep" / "tls" / "flink-rest.crt").read_text())
    java = [p for p in psutil.Process(stack.proc.pid).children(recursive=True) if p.name() == "java"]
    found = []
    for proc in java:
        for conn in proc.net_connections(kind="tcp"):
            if conn.status != psutil.CONN_LISTEN:
                continue
            try:
                with socket.create_connection(("127.0.0.1", conn.laddr.port), timeout=3) as raw, \
                        server_verified(stack).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    if tls.getpeercert(binary_form=True) == expected:
                        found.append(conn)
            except OSError:  # another JVM port (BLOB server, RPC): no TLS
                continue
    return found


def server_verified(stack) -> ssl.SSLContext:
    """A client that checks the server's certificate but has none of its own: any local user could make it."""
    return ssl.create_default_context(cafile=str(stack.workdir / ".ascep" / "tls" / "flink-rest.crt"))


def running_job_id(stack) -> str:
    """The job's id, from its checkpoint folder (not from the REST API, which answers nobody)."""
    checkpoints = stack.workdir / ".ascep" / "checkpoints"
    folders = [p.name for p in checkpoints.iterdir() if re.fullmatch("[0-9a-f]{32}", p.name)]
    assert len(folders) == 1, folders
    return folders[0]


def test_the_flink_rest_api_listens_on_this_machine_only_and_answers_no_client_without_the_jobs_key(start_stack):
    stack = start_stack("--source", "sim")
    ticks = stack.wait_counter("ticks", 1)
    tls_dir = stack.workdir / ".ascep" / "tls"
    assert stat.S_IMODE(tls_dir.stat().st_mode) == 0o700
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in tls_dir.iterdir()} == {
        "flink-rest.p12": 0o600, "flink-rest.crt": 0o600}
    rest = flink_rest_sockets(stack)  # something listens there: the handshake got as far as the server's certificate
    assert len(rest) == 1, rest
    assert rest[0].laddr.ip in ("127.0.0.1", "::ffff:127.0.0.1")
    port = rest[0].laddr.port
    job = running_job_id(stack)
    attempts = [("POST", "/jars/upload", b"--x--"), ("POST", "/jobs", b"{}"), ("GET", "/jobs/overview", None),
                ("PATCH", f"/jobs/{job}?mode=cancel", None), ("PATCH", f"/jobs/{job}?mode=stop", None)]
    for method, path, body in attempts:
        # Plain HTTP: Flink's TLS handler answers every request with a redirect to https, and nothing else.
        plain = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        plain.request(method, path, body=body)
        reply = plain.getresponse()
        assert (reply.status, reply.getheader("location"), reply.read()) == (
            301, f"https://127.0.0.1:{port}{path}", b""), (method, path)
        plain.close()
        # HTTPS without a client certificate: the server ends the handshake (TLS 1.3: the client learns it on its
        # first read), so the request reaches no handler.
        secure = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=server_verified(stack))
        try:
            secure.request(method, path, body=body)
            answer = secure.getresponse()
            raise AssertionError(f"{method} {path} over TLS without a client certificate got {answer.status}")
        except ssl.SSLEOFError:  # the server closed before its alert was read (seen under load): no answer either
            pass
        except ssl.SSLError as refused:
            assert "alert" in str(refused) and "certificate" in str(refused), refused
        except (ConnectionResetError, BrokenPipeError):  # the alert raced our request
            pass
        finally:
            secure.close()
    stack.wait_counter("ticks", ticks + 50)  # the job goes on reading
    assert stack.proc.poll() is None
