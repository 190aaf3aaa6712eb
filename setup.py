"""The rule engine's hot path compiled to C with mypyc, from the same typed Python (pyproject.toml has the rest).

mypyc compiles the modules as they are, so they stay plain Python: where the compiled modules are missing
(the Managed Flink zip carries only .py files, a machine without a C compiler, ASCEP_PURE_PYTHON=1) the
same code runs interpreted, giving the same signals. Compiled, `ascep bench cep` runs about twice as fast
(README, "Figures"). The extensions are optional, so a failed compile only warns and leaves the pure module.
"""
import os
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ascep.compiled import COMPILED, ROOT, extension_of, record_build  # noqa: E402 - one list, read by the CLI and tests too


class BuildCompiled(build_ext):
    """Old extensions go first, so a module that fails to compile runs as source and not as its last build."""

    def run(self) -> None:
        if self.inplace:
            for source in COMPILED:
                extension_of(source).unlink(missing_ok=True)
        super().run()
        record_build(ROOT if self.inplace else Path(self.build_lib))


def compiled_extensions() -> list:
    if os.environ.get("ASCEP_PURE_PYTHON"):
        return []
    from mypyc.build import mypycify

    # one shared library inside core/cep, so it travels with the package (a Flink cluster's python files)
    extensions = mypycify(list(COMPILED), opt_level="3", group_name="core.cep.compiled")
    for extension in extensions:
        extension.optional = True
    return extensions


setup(ext_modules=compiled_extensions(), cmdclass={"build_ext": BuildCompiled})
