"""Where the lake is (a local directory or S3) and whole-object reads and writes there.

While the store is unreachable, every call retries with backoff and blocks: the job backs up, nothing drops.
"""
from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from core.backoff import Backoff, retry_forever
from core.log import event
from core.settings import Settings
from core.stack_file import resolve

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Lake:
    filesystem: pafs.FileSystem
    root: str  # path inside the filesystem: a directory, or bucket/prefix
    uri: str

    @property
    def is_local(self) -> bool:
        return isinstance(self.filesystem, pafs.LocalFileSystem)

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts]) if self.root else "/".join(parts)


def open_lake(uri: str, s3_endpoint: str | None = None, allow_bucket_creation: bool = False) -> Lake:
    """`/path/to/lake` or `s3://bucket/prefix`; credentials come from the usual AWS environment."""
    if uri.startswith("s3://"):
        parsed = urlparse(uri)
        if not parsed.netloc:
            raise ValueError(f"lake {uri!r} names no bucket: use s3://bucket/prefix")
        options: dict = {"connect_timeout": 2, "request_timeout": 10,
                         "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=2),
                         "allow_bucket_creation": allow_bucket_creation}
        if s3_endpoint:
            endpoint = s3_endpoint if "://" in s3_endpoint else f"http://{s3_endpoint}"
            ep = urlparse(endpoint)
            options.update(endpoint_override=ep.netloc, scheme=ep.scheme)
            options.setdefault("region", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                               or "us-east-1")
        root = f"{parsed.netloc}/{parsed.path.strip('/')}".rstrip("/")
        return Lake(pafs.S3FileSystem(**options), root, uri)
    if "://" in uri:
        raise ValueError(f"lake {uri!r}: expected a local directory or s3://bucket/prefix")
    return Lake(pafs.LocalFileSystem(), os.path.abspath(uri), uri)


def configured_lake(settings: Settings, flag: str | None = None) -> Lake:
    """The lake from the flag, the settings or the running stack, with its S3 endpoint if one is set."""
    address = resolve(settings, "lake", flag)
    try:
        endpoint = resolve(settings, "s3_endpoint")
    except LookupError:
        endpoint = None  # AWS itself, or a local lake
    return open_lake(address, endpoint)


def ensure_bucket(uri: str, s3_endpoint: str | None = None) -> bool:
    """Creates the bucket of an s3:// lake when it does not exist, and says whether it did: for a fresh S3-compatible
    store (`ascep prepare`). On AWS the bucket comes from Terraform and is found. Nothing else creates buckets."""
    lake = open_lake(uri, s3_endpoint, allow_bucket_creation=True)
    if lake.is_local:
        raise ValueError(f"lake {uri!r} is a local directory: only an s3:// lake has a bucket")
    bucket = lake.root.split("/", 1)[0]
    if lake.filesystem.get_file_info(bucket).type != pafs.FileType.NotFound:
        return False
    lake.filesystem.create_dir(bucket)
    return True


STORAGE_BACKOFF = Backoff(initial_s=0.1, max_s=5.0, jitter=False)


def retrying(what: str, fn: Callable[[], T]) -> T:
    """Storage errors are taken as transient: the job must back up, never drop rows."""
    def warn(exc: BaseException, delay: float) -> None:
        event(log, "lake unavailable, retrying", logging.WARNING, what=what, error=str(exc)[:300], retry_in_s=delay)
    return retry_forever(fn, (OSError,), STORAGE_BACKOFF, warn)


def put_object(lake: Lake, path: str, data: bytes) -> None:
    """Atomic: a temp file renamed into place locally; one PUT on S3 (objects appear whole)."""
    def write():
        if lake.is_local:
            directory, name = path.rsplit("/", 1)
            os.makedirs(directory, exist_ok=True)
            tmp = f"{directory}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
            with open(tmp, "wb") as out:
                out.write(data)
            os.replace(tmp, path)
        else:
            with lake.filesystem.open_output_stream(path) as out:
                out.write(data)
    retrying(f"put {path}", write)


def get_object(lake: Lake, path: str) -> bytes | None:
    def read():
        try:
            with lake.filesystem.open_input_stream(path) as stream:
                return stream.read()
        except FileNotFoundError:
            return None
    return retrying(f"get {path}", read)


def list_files(lake: Lake, path: str) -> list[pafs.FileInfo]:
    """The files under `path`, however deep; none when it does not exist."""
    selector = pafs.FileSelector(path, recursive=True, allow_not_found=True)
    found = retrying(f"list {path}", lambda: lake.filesystem.get_file_info(selector))
    return [info for info in found if info.type == pafs.FileType.File]


def delete_file(lake: Lake, path: str) -> None:
    """Gone already (another run deleted it) counts as done."""
    def delete():
        try:
            lake.filesystem.delete_file(path)
        except FileNotFoundError:
            pass
    retrying(f"delete {path}", delete)


def parquet_bytes(table: pa.Table, row_group_rows: int) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd", row_group_size=row_group_rows)
    return sink.getvalue().to_pybytes()
