"""The lake's named objects as a listing shows them: a kind's objects in a span of hours, with size and time.

One recursive listing per dt= directory (a day) rather than one per hour. Backtests read the ticks of a time
range from it, and maintenance the closed hours it compacts and the recent signals it measures freshness by.
"""
from __future__ import annotations

from dataclasses import dataclass

import pyarrow.fs as pafs

from lake.layout import MANIFESTS, hour_directories, parse_object_name
from lake.storage import Lake, list_files


@dataclass(frozen=True)
class Listed:
    path: str  # in the lake's filesystem
    directory: str  # below the kind: dt=.../hour=...[/venue=...]
    hour: int  # of its directory, in hours since the epoch
    incarnation: str
    partition: int
    first: int  # the offsets its name says it holds
    last: int
    size: int  # bytes
    mtime_s: int  # when it was written, in whole seconds (S3 keeps no finer time)


def list_objects(lake: Lake, kind: str, start_ms: int, end_ms: int) -> list[Listed]:
    """The objects of `kind` in the hour directories [start_ms, end_ms) reaches, as object_name() names them."""
    hours = hour_directories(start_ms, end_ms)
    base = lake.path(kind)
    out = []
    for day in sorted({directory.split("/")[0] for directory in hours}):
        for info in list_files(lake, f"{base}/{day}"):
            directory, _, name = info.path[len(base) + 1:].rpartition("/")
            named = parse_object_name(name)
            hour = hours.get("/".join(directory.split("/")[:2]))
            if named is not None and hour is not None:
                out.append(Listed(info.path, directory, hour, *named, info.size, int(info.mtime.timestamp())))
    return out


def newest_write(lake: Lake) -> tuple[str, int] | None:
    """(path, epoch ms) of the lake's newest write, or None when nothing was written: the writer rewrites a range's
    manifest with every object it writes, so the newest manifest dates it, and the manifests are few. One listing,
    not retried (OSError when the store does not answer): a probe, which must not block as the job's writes do."""
    selector = pafs.FileSelector(lake.path(MANIFESTS), recursive=True, allow_not_found=True)
    files = [info for info in lake.filesystem.get_file_info(selector) if info.type == pafs.FileType.File]
    if not files:
        return None
    newest = max(files, key=lambda info: info.mtime)
    return newest.path, int(newest.mtime.timestamp() * 1000)
