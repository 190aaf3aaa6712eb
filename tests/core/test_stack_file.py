"""One `ascep up` per state directory: the lock is exclusive, names its holder, and goes with its file."""
from __future__ import annotations

import os

import pytest

from core.stack_file import StateDirInUse, claim_state_dir


def test_a_held_state_directory_is_refused_with_its_holder(tmp_path):
    first = claim_state_dir(tmp_path / "state")
    with pytest.raises(StateDirInUse, match=rf"in use by another `ascep up` \(pid {os.getpid()}\)"):
        claim_state_dir(tmp_path / "state")
    first.close()
    claim_state_dir(tmp_path / "state").close()  # free again once the holder is gone


def test_different_state_directories_do_not_block_each_other(tmp_path):
    a, b = claim_state_dir(tmp_path / "a"), claim_state_dir(tmp_path / "b")
    a.close()
    b.close()
