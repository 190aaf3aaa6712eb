"""How commands find a running `ascep up`: it writes its addresses to <state_dir>/stack.json.

Precedence for each service: an explicit flag, then the settings (env/file), then the running
stack. A command that needs a service and finds none says so and how to provide one.
One `ascep up` holds a state directory at a time (<state_dir>/stack.lock), so two never share stack.json.
"""
from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from core.settings import SettingPath, Settings, setting_paths, setting_source

STACK_FILE = "stack.json"
LOCK_FILE = "stack.lock"


class StateDirInUse(RuntimeError):
    """Another `ascep up` holds the state directory: two stacks there would overwrite each other."""


def claim_state_dir(state_dir: Path) -> IO[str]:
    """An exclusive lock on `state_dir`, held while the returned file stays open (the OS drops it when the
    process ends, however it ends); StateDirInUse names the holder."""
    state_dir.mkdir(parents=True, exist_ok=True)
    lock = open(state_dir / LOCK_FILE, "a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        holder = lock.read().strip() or "unknown"
        lock.close()
        raise StateDirInUse(f"state directory {state_dir} is in use by another `ascep up` (pid {holder}): stop it, "
                            f"or give this one its own directory with ASCEP_STATE_DIR") from None
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()
    return lock


def latest_checkpoint(checkpoint_dir: Path) -> Path | None:
    """The newest completed checkpoint (a chk-N folder holding _metadata) of any run of the job."""
    newest = newest_checkpoint(checkpoint_dir)
    return None if newest is None else newest[0]


def newest_checkpoint(checkpoint_dir: Path) -> tuple[Path, float] | None:
    """The newest completed checkpoint and its _metadata's mtime. Flink deletes old checkpoints as new ones
    complete, so one listed a moment ago may be gone: it is skipped (it made /api/health answer 500 once)."""
    done = []
    for metadata in checkpoint_dir.glob("*/chk-*/_metadata"):
        try:
            done.append((metadata.stat().st_mtime, metadata.parent))
        except FileNotFoundError:
            continue
    if not done:
        return None
    mtime, folder = max(done)
    return folder, mtime


def write_stack(state_dir: Path, addresses: dict[str, Any]) -> Path:
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STACK_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({**addresses, "pid": os.getpid()}, indent=2))
    tmp.replace(path)
    return path


def clear_stack(state_dir: Path) -> None:
    (state_dir / STACK_FILE).unlink(missing_ok=True)


def running_stack(state_dir: Path) -> dict[str, Any]:
    path = state_dir / STACK_FILE
    try:
        stack = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    try:
        os.kill(int(stack.get("pid", -1)), 0)
    except (OSError, ValueError):
        return {}  # left behind by a stack that is gone
    return stack


def redis_address(url: str, ca_file: Path | None) -> str:
    """`url` as every Redis client is given it. redis-py's from_url reads connection options from the query
    string, so one string carries all a client needs, through the job's operators and subprocess arguments.
    A rediss:// URL gets
    ASCEP_REDIS_CA_FILE as its `ssl_ca_certs`, and `ssl_check_hostname=true` unless it says otherwise:
    redis-py 5 checks the certificate's chain but not, by default, that it names the host."""
    if not url.startswith("rediss://"):
        if ca_file is not None:
            raise ValueError(f"ASCEP_REDIS_CA_FILE is set but the Redis URL {redacted(url)} is not rediss:// (TLS)")
        return url
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("ssl_check_hostname", "true")
    if ca_file is not None:
        if not ca_file.is_file():
            raise FileNotFoundError(f"ASCEP_REDIS_CA_FILE names {str(ca_file)!r}, which is not a file")
        query["ssl_ca_certs"] = str(ca_file.resolve())
    return urlunsplit(parts._replace(query=urlencode(query)))


def redacted(url: str) -> str:
    """`url` with its password (Redis's auth token) replaced, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def resolve(settings: Settings, service: str, flag: str | None = None) -> str:
    """Address of `service` ("kafka", "redis", "lake"): flag, settings, then the running stack; Redis's
    with its CA (redis_address)."""
    value = flag or getattr(settings, service, None) or running_stack(settings.state_dir).get(service)
    if not value:
        raise LookupError(f"no {service} address: start `ascep up`, or pass --{service} / set ASCEP_{service.upper()}")
    return redis_address(str(value), settings.redis_ca_file) if service == "redis" else str(value)


def resolve_optional(settings: Settings, service: str, flag: str | None = None) -> str | None:
    """As resolve, but None where the service is optional (e.g. Redis for a producer's health figures)."""
    try:
        return resolve(settings, service, flag)
    except LookupError:
        return None


class InForce(NamedTuple):
    """One setting as `ascep config` shows it."""

    name: str  # dotted: arbitrage.min_profit_bps
    value: Any  # as JSON has it, secrets masked
    source: str  # default, env ASCEP_..., file PATH, or running stack PATH (pid N)


# What a running `ascep up` gives the other commands when neither the environment nor the file does (resolve).
FROM_STACK = ("kafka", "redis", "lake", "s3_endpoint")


def _from_stack(stack: Mapping[str, Any]) -> dict[SettingPath, Any]:
    given: dict[SettingPath, Any] = {(name,): stack[name] for name in FROM_STACK if stack.get(name)}
    if stack.get("dashboard"):
        dashboard = urlsplit(str(stack["dashboard"]))
        given.update({("dashboard", "host"): dashboard.hostname, ("dashboard", "port"): dashboard.port})
    return given


def settings_in_force(settings: Settings, env: Mapping[str, str], file_values: Mapping[str, Any],
                      config_file: str | None, stack: Mapping[str, Any]) -> list[InForce]:
    """Every setting with its value and where that came from, as the commands see it: the environment, then the
    file (`file_values`, read from `config_file`), then the running stack (`stack`, running_stack()'s) for the
    addresses it gives, then the default. The Kafka password and Redis's token stay masked."""
    values = settings.model_dump(mode="json")
    stack_given = _from_stack(stack)
    at_stack = f"running stack {settings.state_dir / STACK_FILE} (pid {stack.get('pid')})"
    shown = []
    for path in setting_paths():
        value: Any = values
        for name in path:
            value = value[name]
        found = setting_source(path, env, file_values)
        if found is None and path in stack_given:
            value, source = stack_given[path], at_stack
        else:
            source = "default" if found is None else f"file {config_file}" if found == "file" else f"env {found}"
        if path == ("redis",) and value:
            value = redacted(str(value))
        shown.append(InForce(".".join(path), value, source))
    return shown
