"""The pure parts of compaction: which objects a larger one covers, which ranges are settled, what merges."""
from __future__ import annotations

from lake.layout import HOUR_MS, covering_name, directory_hour, hour_partition, object_name, redundant_objects
from lake.maintenance import RangeState, mergeable_groups, plan_merges, settled
from lake.objects import Listed

INC = "agrdgtet6f3lhhcjx2za3a3aoi"
OTHER = "bbbbbbbbbbbbbbbbbbbbbbbbbb"
N = 100  # offsets per range
DIR = "dt=2025-11-21/hour=04/venue=binance"


def path(first: int, last: int, partition: int = 0, incarnation: str = INC, directory: str = DIR) -> str:
    return f"bucket/lake/ticks/{directory}/{object_name(incarnation, partition, first, last)}"


def listed(first: int, last: int | None = None, size: int = 1_000, mtime_s: int = 100, partition: int = 0,
           directory: str = DIR) -> Listed:
    last = first + N - 1 if last is None else last
    return Listed(path(first, last, partition, directory=directory), directory, directory_hour(directory), INC,
                  partition, first, last, size, mtime_s)


def complete(*firsts: int, mtime_s: int = 100) -> dict[tuple[str, int, int], RangeState]:
    return {(INC, 0, first): RangeState(first + N - 1, True, mtime_s) for first in firsts}


def test_an_object_a_larger_one_covers_is_redundant():
    merged, inside, outside = path(0, 3 * N - 1), path(N, 2 * N - 1), path(3 * N, 4 * N - 1)
    assert redundant_objects([merged, inside, outside]) == {inside}
    assert redundant_objects([path(0, 5 * N - 1), path(0, 3 * N - 1), path(3 * N, 4 * N - 1)]) == \
        {path(0, 3 * N - 1), path(3 * N, 4 * N - 1)}, "a later, larger merge covers an earlier one"
    assert redundant_objects([inside, outside]) == set(), "the writer's own objects never cover each other"


def test_only_the_same_directory_incarnation_and_partition_cover():
    merged = path(0, 3 * N - 1)
    others = [path(N, 2 * N - 1, partition=1), path(N, 2 * N - 1, incarnation=OTHER),
              path(N, 2 * N - 1, directory="dt=2025-11-21/hour=04/venue=kraken"),
              f"bucket/lake/ticks/{DIR}/someone-elses.parquet"]
    assert redundant_objects([merged, *others]) == set()


def test_the_object_holding_a_range_is_found_among_a_directorys_names():
    names = [object_name(INC, 0, 0, 3 * N - 1), object_name(INC, 1, N, 2 * N - 1), "notes.txt"]
    assert covering_name(names, INC, 0, N, 2 * N - 1) == names[0]
    assert covering_name(names, INC, 1, N, 2 * N - 1) == names[1]
    assert covering_name(names, INC, 0, 3 * N, 4 * N - 1) is None
    assert covering_name(names, OTHER, 0, N, 2 * N - 1) is None


def test_an_hour_directory_reads_back_as_its_hour():
    for ms in (0, 1_763_700_000_000, 1_763_700_000_000 + 5 * HOUR_MS + 1):
        assert directory_hour(f"{hour_partition(ms)}/venue=binance") == ms // HOUR_MS
        assert directory_hour(hour_partition(ms)) == ms // HOUR_MS
    assert directory_hour("venue=binance") is None


def test_settled_means_complete_and_written_before_its_manifest():
    ranges = {**complete(0), (INC, 0, N): RangeState(2 * N - 1, False, 100)}
    assert settled(listed(0), ranges)
    assert not settled(listed(0, mtime_s=101), ranges), "rewritten after the manifest said complete: a rewind"
    assert not settled(listed(N), ranges), "the writer is still in this range"
    assert not settled(listed(2 * N), ranges), "no manifest yet"
    assert settled(listed(N, 4 * N - 1, mtime_s=500), ranges), "a merged object never changes"
    assert not settled(listed(0, N // 2 - 1), ranges), "a range of another size is not this writer's"


def test_merges_take_runs_of_settled_consecutive_objects():
    objects = [listed(first) for first in (0, N, 2 * N, 4 * N, 5 * N, 7 * N, 8 * N)]
    ranges = complete(0, N, 2 * N, 4 * N, 5 * N, 8 * N)  # 7N is unfinished; nothing of 3N or 6N is here
    merges = plan_merges(mergeable_groups(objects), ranges, max_bytes=10**9)
    assert [(m.target, [s.first for s in m.sources]) for m in merges] == [
        (path(0, 3 * N - 1), [0, N, 2 * N]), (path(4 * N, 6 * N - 1), [4 * N, 5 * N])]


def test_merges_stop_at_the_size_limit_and_a_lone_object_stays():
    objects = [listed(first * N, size=400) for first in range(5)]
    merges = plan_merges(mergeable_groups(objects), complete(*(f * N for f in range(5))), max_bytes=1_000)
    assert [[s.first for s in m.sources] for m in merges] == [[0, N], [2 * N, 3 * N]], "4N alone is left"
    assert plan_merges(mergeable_groups(objects[:1]), complete(0), max_bytes=10**9) == []


def test_each_directory_and_partition_merges_on_its_own():
    kraken = "dt=2025-11-21/hour=04/venue=kraken"
    objects = [listed(0), listed(N), listed(0, partition=1), listed(N, partition=1), listed(0, directory=kraken)]
    ranges = {**complete(0, N), **{(INC, 1, f): RangeState(f + N - 1, True, 100) for f in (0, N)}}
    targets = sorted(m.target for m in plan_merges(mergeable_groups(objects), ranges, max_bytes=10**9))
    assert targets == sorted([path(0, 2 * N - 1), path(0, 2 * N - 1, partition=1)])
