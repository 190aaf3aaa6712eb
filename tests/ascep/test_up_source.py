"""What `ascep up` feeds: by default both simulated markets, so every detector has something to find."""
from __future__ import annotations

import sys

import pytest

from ascep.cli import build_parser
from ascep.services import ServiceError
from ascep.stack import source_command


def test_the_default_source_is_the_crypto_and_fx_markets_together():
    args = build_parser().parse_args(["up"])
    assert args.source == "sim+fx"
    assert source_command(args.source, "k:1", "redis://r") == [sys.executable, "-m", "ascep.cli", "ingest", "sim+fx",
                                                               "--book-levels", "5", "--kafka", "k:1",
                                                               "--redis", "redis://r"]
    for market in ("sim", "fx"):
        assert source_command(market, "k:1", "redis://r")[4] == market
    assert source_command("none", "k:1", "redis://r") is None


def test_a_bad_source_is_named_with_the_choices(tmp_path):
    with pytest.raises(ServiceError, match=r"--source 'crypto': expected sim, fx, sim\+fx, replay:FILE or none"):
        source_command("crypto", "k:1", "redis://r")
    with pytest.raises(ServiceError, match="no such file"):
        source_command(f"replay:{tmp_path / 'missing.jsonl'}", "k:1", "redis://r")
