"""`ascep up` as a whole: what it refuses before it starts anything."""
from __future__ import annotations

import json
import subprocess
import sys

from ascep.services import free_port


def test_a_second_stack_on_the_same_state_directory_is_refused(start_stack, tmp_path):
    stack = start_stack("--source", "none")
    second = subprocess.run([sys.executable, "-m", "ascep.cli", "up", "--port", str(free_port()), "--source", "none"],
                            cwd=tmp_path, env=stack.env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"is in use by another `ascep up` (pid {stack.proc.pid})" in second.stderr
    assert stack.proc.poll() is None, "the first stack must go on"
    assert json.loads((tmp_path / ".ascep" / "stack.json").read_text())["kafka"] == stack.info["kafka"]
