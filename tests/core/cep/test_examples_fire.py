"""What a first run shows: every example rule (docs/rules/examples) and every template with its defaults fires
within three minutes of `ascep up`'s default source, the simulated crypto and FX markets (seed 0, as `ascep up`
feeds them), and those that watch for an event stay quiet on the same markets with nothing planted."""
from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from core.cep.engine import RuleEngine
from core.cep.templates import TEMPLATES
from core.cep.trial import run_rule
from ingestion.sim.merged import crypto_and_fx

EXAMPLES = sorted((Path(__file__).resolve().parents[3] / "docs" / "rules" / "examples").glob("*.rule"))
T0 = 1_763_700_000_000
MINUTES = 3
# Templates that fire on the random walks alone too (a z-score over a window still filling up): not quiet.
NOISY = {"breakout", "stat_arb"}


def minutes_of(**options) -> list:
    end = T0 + MINUTES * 60_000
    return list(itertools.takewhile(lambda t: t.ts < end, crypto_and_fx(**options).ticks(T0)))


@pytest.fixture(scope="module")
def default_source() -> list:
    return minutes_of()


@pytest.fixture(scope="module")
def nothing_planted() -> list:
    return minutes_of(opportunity_every_s=0)  # no opportunities, and so no spread widenings between them


def reads_trades(text: str) -> bool:
    engine = RuleEngine()
    engine.apply("r", text)
    return engine.reads_trades()


def opened(text: str, ticks: list, rule_id: str) -> list[dict]:
    return [s for s in run_rule(text, ticks, rule_id=rule_id)["signals"] if s["status"] == "open" or "events" in s]


def test_the_examples_are_there():
    assert len(EXAMPLES) >= 5


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_rule_fires_on_the_default_source_and_only_on_what_was_planted(path, default_source,
                                                                                     nothing_planted):
    text = path.read_text()
    assert opened(text, default_source, path.stem), f"{path.name} never fired in {MINUTES} minutes"
    assert opened(text, nothing_planted, path.stem) == []


@pytest.mark.parametrize("name", [name for name in TEMPLATES if not reads_trades(TEMPLATES[name]())])
def test_each_template_fires_with_its_defaults_on_the_default_source(name, default_source, nothing_planted):
    text = TEMPLATES[name]()
    assert opened(text, default_source, name), f"{name} never fired in {MINUTES} minutes"
    if name not in NOISY:
        assert opened(text, nothing_planted, name) == []


def test_only_volume_surge_needs_trades_which_the_simulated_markets_do_not_make():
    assert [name for name in TEMPLATES if reads_trades(TEMPLATES[name]())] == ["volume_surge"]
