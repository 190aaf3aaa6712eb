"""The soak benchmark's arithmetic: the memory slope it reports and how it names the stack's processes."""
import math

from ascep.benchmarks.soak import part_of, percentile, slope_mb_per_min


def test_slope_is_mb_per_minute_of_a_straight_line():
    assert slope_mb_per_min([(m, 100 + 2.5 * m) for m in range(10)]) == 2.5


def test_flat_memory_has_zero_slope_despite_noise_around_it():
    assert abs(slope_mb_per_min([(m, 500 + (1 if m % 2 else -1)) for m in range(60)])) < 0.01


def test_too_few_samples_give_no_slope():
    assert math.isnan(slope_mb_per_min([(0, 1.0), (1, 2.0)]))


def test_children_of_ascep_up_are_named_by_their_command_line():
    assert part_of("/x/tansu broker --listener-url tcp://127.0.0.1:1") == "broker"
    assert part_of("/usr/bin/redis-server *:6379") == "redis"
    assert part_of("python -m ascep.cli job run --kafka k") == "flink-job"
    assert part_of("python -m ascep.cli dashboard --port 1") == "dashboard"
    assert part_of("something else") == "other"


def test_percentiles_of_a_hundred_values():
    values = [float(v) for v in range(100, 0, -1)]
    assert percentile(values, 0.99) == 100.0
    assert percentile(values, 0.5) == 51.0
    assert math.isnan(percentile([], 0.99))
