"""Which core modules run compiled, and whether their compiled form is current.

setup.py compiles COMPILED with mypyc when the project is installed (./dev does it, again whenever they
change) and records the sources it compiled. Python imports an extension module before the source beside
it, so an edited module whose extension was not rebuilt would silently run its old code: stale() finds
those, for the tests to refuse and the CLI to warn.
"""
from __future__ import annotations

import hashlib
import json
import sys
from importlib.machinery import EXTENSION_SUFFIXES, SOURCE_SUFFIXES, FileFinder, SourceFileLoader
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The modules every tick goes through in the job's rule operator (engine -> market and windows -> NFA).
COMPILED = ("core/cep/engine.py", "core/cep/compiler.py", "core/cep/windows.py", "core/cep/eventtime.py",
            "core/cep/nfa.py", "core/cep/rules/covers.py")
BUILT = "core/cep/compiled.json"  # source -> the digest of the text its extension was built from
REBUILD = "pip install --no-deps -e . (./dev test and ./dev up do it themselves)"


def extension_of(source: str) -> Path:
    return (ROOT / source).with_suffix(EXTENSION_SUFFIXES[0])


def _digest(source: str) -> str:
    return hashlib.sha256((ROOT / source).read_bytes()).hexdigest()


def record_build(into: Path = ROOT) -> None:
    """The sources setup.py has just compiled, beside their extensions (in place, or in the wheel being built)."""
    (into / BUILT).parent.mkdir(parents=True, exist_ok=True)
    (into / BUILT).write_text(json.dumps({source: _digest(source) for source in COMPILED}, indent=1) + "\n")


def state() -> str:
    """"compiled" (every module), "pure" (none: no compiler, or the Managed Flink zip) or "partly"."""
    built = [extension_of(source).exists() for source in COMPILED]
    return "compiled" if all(built) else "pure" if not any(built) else "partly"


def stale() -> list[str]:
    """The compiled modules whose source is not the one their extension was built from."""
    try:
        built = json.loads((ROOT / BUILT).read_text())
    except (OSError, ValueError):
        built = {}
    return [source for source in COMPILED if extension_of(source).exists() and built.get(source) != _digest(source)]


def import_from_source() -> None:
    """From now on this process imports the core package from its .py files, as a machine without the extensions
    would: for `ascep bench cep --engine interpreted` and the test that compares both. Modules of the core imported
    already stay as they are, so call it first."""
    if any(name.startswith("core.cep") for name in sys.modules):
        raise RuntimeError("core.cep is imported already: call import_from_source() before it is")
    core = str(ROOT / "core")

    def source_only(path: str) -> FileFinder:
        if not path.startswith(core):
            raise ImportError(path)  # the next hook finds it, extensions included
        return FileFinder(path, (SourceFileLoader, SOURCE_SUFFIXES))

    sys.path_hooks.insert(0, source_only)
    sys.path_importer_cache.clear()
