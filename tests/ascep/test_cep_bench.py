"""`ascep bench cep` runs, and its backtest reads back from Parquet every tick it wrote (the figures go in docs)."""
from __future__ import annotations

import json

import pytest

from ascep.cli import main


def test_bench_cep_reports_the_engine_and_the_backtest_over_parquet(capsys):
    assert main(["bench", "cep", "--ticks", "3000", "--rules", "5", "--symbols", "10", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["ticks"] == 3000 and figures["errors"] == 0
    assert figures["backtest_ticks_per_cpu_second"] > 0 and figures["backtest_ticks_per_wall_second"] > 0



def test_bench_cep_names_a_count_too_small(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "cep", "--symbols", "0"])
    assert exit_.value.code == 2
    assert "argument --symbols: 0 is less than 2" in capsys.readouterr().err
