"""The Managed Flink application zip (`ascep deploy package`; infrastructure/README.md, "The application zip").

Layout: ascep_job.py at the root (run option python), and lib/ (run option pyFiles), which holds the
job's packages and every library they need that the Flink runtime lacks, as wheels for the service's
platform: pip cannot run on the service. Flink puts a pyFiles folder itself on the Python path of the
script and of every worker, so the packages go inside lib/, not beside it.

The libraries are the job's requirements and everything they depend on, at the versions this
environment runs (the ones its tests run with), except confluent-kafka: 2.4.0, the newest release
with a manylinux2014 wheel. PyFlink and its own dependencies (numpy, pyarrow, ...) are the runtime's.
"""
from __future__ import annotations

import importlib.metadata as metadata
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from flink_jobs.topology import PACKAGES

# What the job imports beyond PyFlink's own dependencies (pyarrow comes with PyFlink): the Kafka client, the
# Redis client, JSON, the settings, and the MSK IAM token signer (the optional extra `aws`).
JOB_REQUIREMENTS = ("confluent-kafka", "redis", "orjson", "pydantic-settings", "aws-msk-iam-sasl-signer-python")
# The newest confluent-kafka with a manylinux2014 wheel (glibc 2.17); later ones are manylinux_2_28 only.
PINNED = {"confluent-kafka": "2.4.0"}
PLATFORM = ("--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11",
            "--only-binary=:all:")
RUNTIME = "apache-flink"
ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "flink_jobs" / "ascep_job.py"
LIB = "lib"


class PackagingError(RuntimeError):
    """The zip cannot be built here; the message says what is missing."""


def closure(names: tuple[str, ...] | list[str]) -> dict[str, str]:
    """Distribution name -> installed version for `names` and everything they require here (markers judged
    for this interpreter, which is the service's Linux x86_64 CPython 3.11)."""
    found: dict[str, str] = {}
    todo = [canonicalize_name(name) for name in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            raise PackagingError(f"{name} is not installed here, and the zip carries the versions this environment "
                                 f"runs: pip install -e '.[aws]' (the MSK IAM signer is the extra `aws`)") from None
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return found


def pins() -> list[str]:
    versions = {**closure(JOB_REQUIREMENTS), **PINNED}
    return [f"{name}=={version}" for name, version in sorted(versions.items())]


def pip(args: list[str], say: Callable[[str], None]) -> None:
    """pip in this interpreter, its progress on our stderr."""
    say(f"pip {args[0]} {' '.join(a for a in args[1:] if '==' in a)}")
    code = subprocess.call([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"], stdout=sys.stderr)
    if code:
        raise PackagingError(f"pip {args[0]} failed with exit code {code} (its output is above)")


def fetch_wheels(requirements: list[str], wheels: Path, say: Callable[[str], None]) -> None:
    """Every wheel into `wheels`: from that folder alone when it has them all (a rebuild needs no index),
    else from the index."""
    wheels.mkdir(parents=True, exist_ok=True)
    download = ["download", "--no-deps", "--dest", str(wheels), "--find-links", str(wheels), *PLATFORM, *requirements]
    offline = subprocess.run([sys.executable, "-m", "pip", *download, "--no-index", "--quiet",
                              "--disable-pip-version-check"], capture_output=True, text=True)
    if offline.returncode == 0:
        say(f"wheels: all {len(requirements)} found in {wheels}")
        return
    say(f"wheels: fetching into {wheels}")
    pip(download, say)


def build_zip(out: Path, wheels: Path | None = None, say: Callable[[str], None] = print) -> dict:
    """Builds the application zip at `out`; returns its summary (what summary_lines prints).
    `wheels`: a folder kept between builds, so a rebuild takes its wheels from there."""
    requirements = pins()
    runtime = set(closure([RUNTIME]))
    with tempfile.TemporaryDirectory(prefix="ascep-zip-") as tmp:
        wheel_dir = wheels or Path(tmp) / "wheels"
        fetch_wheels(requirements, wheel_dir, say)
        lib = Path(tmp) / LIB
        pip(["install", "--no-deps", "--no-index", "--find-links", str(wheel_dir), "--target", str(lib),
             "--no-compile", "--quiet", *PLATFORM, *requirements], say)
        out.parent.mkdir(parents=True, exist_ok=True)
        root = ENTRY_SCRIPT.parents[1]
        files = [(ENTRY_SCRIPT, ENTRY_SCRIPT.name)]
        files += [(path, f"{LIB}/{path.relative_to(root)}") for package in PACKAGES
                  for path in sorted((root / package).rglob("*.py"))]
        files += [(path, f"{LIB}/{path.relative_to(lib)}") for path in sorted(lib.rglob("*"))
                  if path.is_file() and "__pycache__" not in path.parts and path.relative_to(lib).parts[0] != "bin"]
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path, name in files:
                archive.write(path, name)
        distributions = sorted(p.name.removesuffix(".dist-info") for p in lib.glob("*.dist-info"))
        sizes = {name: path.stat().st_size for path, name in files}
    top: dict[str, int] = {}
    for name, size in sizes.items():
        key = "/".join(name.split("/")[:2])
        top[key] = top.get(key, 0) + size
    packaged = sorted(canonicalize_name(r.split("==")[0]) for r in requirements)
    return {"path": str(out), "bytes": out.stat().st_size, "unpacked_bytes": sum(sizes.values()), "files": len(sizes),
            "distributions": distributions, "largest": sorted(top.items(), key=lambda kv: -kv[1])[:10],
            "also_in_runtime": [name for name in packaged if name in runtime], "packages": list(PACKAGES)}


def summary_lines(summary: dict) -> list[str]:
    mb = 1024 * 1024
    lines = [f"{summary['path']}: {summary['bytes'] / mb:.1f} MiB ({summary['unpacked_bytes'] / mb:.1f} MiB "
             f"unpacked, {summary['files']:,} files), for Managed Flink on manylinux2014 x86_64, CPython 3.11",
             f"  {ENTRY_SCRIPT.name:<28} run option python = {ENTRY_SCRIPT.name}",
             f"  {LIB + '/':<28} run option pyFiles = {LIB}/: the job's packages "
             f"({', '.join(summary['packages'])}) and {len(summary['distributions'])} distributions:",
             *(f"    {name}" for name in summary["distributions"]),
             "  largest entries:",
             *(f"    {name:<40} {size / mb:6.1f} MiB" for name, size in summary["largest"])]
    if summary["also_in_runtime"]:
        lines.append(f"  also in PyFlink's dependencies, packaged at the versions tested here: "
                     f"{', '.join(summary['also_in_runtime'])}")
    return lines
