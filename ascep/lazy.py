"""Subcommands whose modules load only when they are chosen, so `ascep --help` and light commands start fast.

A subcommand's help line comes from a table (name -> help) that needs none of the modules. When argparse
picks a subcommand, and only then, its module is imported and its `add_arguments(parser)` adds the options
(and `func`), just before argparse parses the rest of the line with them: `ascep COMMAND --help` still
shows every option, and no other subcommand's module is imported.
"""
from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from functools import partial
from types import ModuleType


class LazyParser(argparse.ArgumentParser):
    """A parser that calls `load(self)` once, the first time it parses."""

    def __init__(self, *args, load: Callable[[argparse.ArgumentParser], None] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._load = load

    def parse_known_args(self, args=None, namespace=None):
        if self._load is not None:
            load, self._load = self._load, None
            load(self)
        return super().parse_known_args(args, namespace)


def add_lazy_subcommands(parser: argparse.ArgumentParser, package: str, helps: Mapping[str, str],
                         setup: Callable[[ModuleType, argparse.ArgumentParser], None] | None = None,
                         **options) -> None:
    """A subcommand per entry of `helps`: choosing NAME imports the module `package`.NAME and calls
    `setup(module, parser)`, by default `module.add_arguments(parser)`. `options` go to add_subparsers."""
    sub = parser.add_subparsers(parser_class=LazyParser, **options)
    for name, help_text in helps.items():
        sub.add_parser(name, help=help_text, load=partial(_load, f"{package}.{name}", setup or _add_arguments))


def _load(module: str, setup, parser: argparse.ArgumentParser) -> None:
    setup(importlib.import_module(module), parser)


def _add_arguments(module: ModuleType, parser: argparse.ArgumentParser) -> None:
    module.add_arguments(parser)
