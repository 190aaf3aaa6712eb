"""The CEP NFA against the real FlinkCEP 2.3 of the apache-flink wheel (tests/core/cep/flinkcep/differential.py).

Every run checks the fixed regression cases and 2,000 random patterns from a new seed it prints;
ASCEP_FLINKCEP_SEED=N reruns seed N (as `--seed N` does on the command line).
ASCEP_FLINKCEP_ALLOW=emit_at_once allows FlinkCEP's hold-back of matches under a skip strategy (for an
engine that emits at once). FlinkCEP runs in one JVM for the module; the runner is
compiled with javac, so without a JDK these tests are skipped.
"""
from __future__ import annotations

import os
import random
from dataclasses import replace

import pytest

from tests.core.cep.flinkcep import differential as diff

pytestmark = pytest.mark.integration
RANDOM_PATTERNS = 2000
ALSO_AS_A_JOB = 20  # of them, also run as a real Flink job to check the direct NFA drive


@pytest.fixture(scope="module")
def flinkcep():
    try:
        runner = diff.FlinkCep()
    except diff.NoJavac as e:
        pytest.skip(str(e))
    with runner:
        yield runner


@pytest.fixture(scope="module")
def seed() -> int:
    given = os.environ.get("ASCEP_FLINKCEP_SEED", "random")
    if given != "random" and not given.isdigit():
        pytest.fail(f"ASCEP_FLINKCEP_SEED must be a whole number or random, got {given!r}")
    value = random.randrange(2**32) if given == "random" else int(given)
    print(f"ASCEP_FLINKCEP_SEED={value}")
    return value


def test_flinkcep_gives_what_it_is_known_to_give(flinkcep):
    outcomes = flinkcep.run([known.case for known in diff.REGRESSIONS])
    wrong = [f"`{k.pattern}` on `{k.events}`: known {k.flinkcep}, got {diff.shown_flinkcep(o)}"
             for k, o in zip(diff.REGRESSIONS, outcomes) if diff.known_differs(k, o)]
    assert not wrong, "the harness does not reproduce FlinkCEP:\n" + "\n".join(wrong)


def test_driving_flinkceps_nfa_directly_gives_what_a_flink_job_gives(flinkcep, seed):
    sample = [known.case for known in diff.REGRESSIONS] + diff.random_cases(seed, ALSO_AS_A_JOB)
    differ = [f"`{sample[d['case']].pattern_text()}` on `{sample[d['case']].events_text()}`: "
              f"direct {d['nfa']}, job {d['job']}" for d in flinkcep.validate(sample)]
    assert not differ, f"seed {seed}:\n" + "\n".join(differ)


def test_a_disagreement_shrinks_to_a_minimal_case(flinkcep):
    # an engine that ignores skip strategies: FlinkCEP's SKIP TO NEXT keeps one match per first event
    def skipless(case: diff.Case) -> diff.Outcome:
        return diff.run_engine(replace(case, skip="no_skip", skip_stage=None))

    checker = diff.Differential(flinkcep, engine=skipless)
    case = diff.Case.from_text("a FOLLOWED BY ANY b NEXT c? AFTER MATCH SKIP TO NEXT", "0:a@4 1:x@5 2:b@7 3:b@9 4:x@9")
    [found] = checker.disagreements([case])
    assert str(found) == "`a FOLLOWED BY ANY b AFTER MATCH SKIP TO NEXT` on `0:a 1:b 2:b`: " \
                         "FlinkCEP gives (0,1), the engine gives (0,1) (0,2)"


def test_emit_at_once_allows_the_hold_back_and_nothing_else(flinkcep):
    held_back = diff.Case.from_text("a+ AFTER MATCH SKIP TO FIRST a", "0:a 1:a")
    order_of_a_step = diff.Case.from_text("a+ FOLLOWED BY b AFTER MATCH SKIP PAST LAST EVENT", "0:a 1:a 2:b")
    strict, at_once = (diff.Differential(flinkcep, allowed) for allowed in ((), ("emit_at_once",)))
    assert [diff.shown_flinkcep(f) for f, _, _ in strict.check([held_back, order_of_a_step])] == \
        ["(0) (0,1)", "(0,1,2)"]
    assert [diff.shown_flinkcep(f) for f, _, _ in at_once.check([held_back, order_of_a_step])] == \
        ["(0) (0,1) (1)", "(0,1,2)"]
    with pytest.raises(ValueError, match="unknown allowed difference"):
        diff.Differential(flinkcep, ("emit_late",))


def test_the_engine_agrees_with_flinkcep(flinkcep, seed):
    allowed = [a for a in os.environ.get("ASCEP_FLINKCEP_ALLOW", "").split(",") if a]
    cases = [known.case for known in diff.REGRESSIONS] + diff.random_cases(seed, RANDOM_PATTERNS)
    found = diff.Differential(flinkcep, allowed).disagreements(cases)
    if found:
        pytest.fail(f"{len(found)} shrunk disagreement(s) with FlinkCEP in {len(cases)} cases (seed {seed}, "
                    f"rerun with ASCEP_FLINKCEP_SEED={seed}):\n" + "\n".join(map(str, found)), pytrace=False)
