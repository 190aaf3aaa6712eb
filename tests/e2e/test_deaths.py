"""The embedded broker or Redis dying under `ascep up`: one clear line naming it, a non-zero exit, no hang."""
from __future__ import annotations

import re
import signal
import time

import psutil
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


@pytest.mark.parametrize(("service", "process", "log"), [("kafka", "tansu", "broker.log"),
                                                         ("redis", "redis-server", "redis.log")])
def test_a_dead_embedded_service_ends_the_stack_with_one_line_and_a_non_zero_exit(start_stack, service, process,
                                                                                  log):
    stack = start_stack("--source", "sim")
    stack.wait_counter("ticks", 1)
    (victim,) = [p for p in psutil.Process(stack.proc.pid).children(recursive=True) if p.name().startswith(process)]
    before = stack.output()
    killed = time.monotonic()
    victim.send_signal(signal.SIGKILL)
    code = stack.proc.wait(60)
    assert code != 0
    assert time.monotonic() - killed < 60
    said = stack.output()[len(before):].strip().splitlines()
    assert len(said) == 1, said
    assert re.fullmatch(rf"ascep up: error: {service} died \(killed by SIGKILL\); its log: \S+/{log}", said[0]), said
