"""Builds the maintenance Lambda's deployment zip: handler.py, the project's `core` and `lake` packages, and what
requirements.txt names, as wheels for the Lambda's platform (python3.12 on x86_64; pip cannot run there). pyarrow
comes from the AWS SDK for pandas managed layer and boto3 from the runtime (README.md says why). The zip's entries
carry a fixed date, so the same sources give the same bytes and Terraform's source_code_hash changes only with them.

    python infrastructure/lambda/maintenance/build.py [--out build/lambda/maintenance.zip]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PACKAGES = ("core", "lake")  # the project's code the handler imports
PLATFORM = ["--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.12",
            "--only-binary=:all:"]
FIXED_DATE = (2020, 1, 1, 0, 0, 0)


def copy_sources(target: Path) -> None:
    shutil.copy2(HERE / "handler.py", target / "handler.py")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, target / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))


def install_dependencies(target: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-compile", "--target", str(target),
                    *PLATFORM, "-r", str(HERE / "requirements.txt")], check=True)


def build(out: Path) -> list[str]:
    """Writes the zip; returns its top-level entries."""
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp)
        copy_sources(target)
        install_dependencies(target)
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(p for p in target.rglob("*") if p.is_file()):
                entry = zipfile.ZipInfo(path.relative_to(target).as_posix(), FIXED_DATE)
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, path.read_bytes(), zipfile.ZIP_DEFLATED)
        return sorted(p.name for p in target.iterdir())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "lambda" / "maintenance.zip")
    args = parser.parse_args()
    top = build(args.out)
    print(f"{args.out}: {args.out.stat().st_size / 2**20:.1f} MiB; {', '.join(top)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
