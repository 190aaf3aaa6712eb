"""`ascep up` is closed to the network: no process of its tree listens outside the loopback interface."""
from __future__ import annotations

import psutil
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

LOOPBACK = {"127.0.0.1", "::1", "::ffff:127.0.0.1"}


def test_every_listening_socket_of_the_stack_is_on_the_loopback_interface(start_stack):
    stack = start_stack("--source", "sim")
    stack.wait_counter("ticks", 1)  # every operator runs: whatever the job opens is open by now
    listening = [(proc.name(), conn.laddr.ip, conn.laddr.port)
                 for proc in [psutil.Process(stack.proc.pid), *psutil.Process(stack.proc.pid).children(recursive=True)]
                 for conn in proc.net_connections(kind="inet")
                 if conn.status == psutil.CONN_LISTEN or (conn.type == 2 and not conn.raddr)]  # TCP listen, UDP bound
    names = {name for name, _ip, _port in listening}
    assert {"redis-server", "java"} <= names and any(name.startswith("tansu") for name in names), listening
    assert [socket for socket in listening if socket[1] not in LOOPBACK] == []
