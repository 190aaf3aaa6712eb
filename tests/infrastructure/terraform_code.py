"""Reads the Terraform of infrastructure/ with python-hcl2, for the checks that `terraform validate` cannot make
without the AWS provider: what every reference names is declared, module calls match their modules' inputs,
and the ASCEP_* names the Terraform passes are settings of core.settings.Settings.

python-hcl2 keeps a string literal with its quotes ('"abc"') and gives an expression as "${...}", so a
literal is told from an expression by its quotes, and references are looked for inside ${...} only.
"""
from __future__ import annotations

import re
import typing
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import hcl2
from pydantic import BaseModel

from core.settings import Settings, UnknownSetting, check_env_name

# What `ref.name` means outside the declarations of a module: iteration and meta names, not declarations.
NOT_DECLARATIONS = {"each", "count", "path", "terraform", "self"}
META_ARGUMENTS = {"source", "version", "providers", "depends_on", "count", "for_each"}
REFERENCE = re.compile(r"(?<![\w.\"])(var|local|module|data|aws_[a-z0-9_]+|terraform_data)\.([A-Za-z_][\w-]*)"
                       r"(?:\.([A-Za-z_][\w-]*))?")
ASCEP_NAME = re.compile(r"ASCEP_[A-Z0-9_]+")


def unquote(value: Any) -> Any:
    """'"abc"' -> 'abc'; anything else (an expression, a number) as it is."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def is_literal(value: Any) -> bool:
    return isinstance(value, str) and value.startswith('"') and value.endswith('"') and "${" not in value


def expressions(text: str) -> Iterator[str]:
    """The ${...} parts of a serialized value (balanced braces; $${ is an escaped literal)."""
    i = 0
    while (start := text.find("${", i)) != -1:
        if start > 0 and text[start - 1] == "$":
            i = start + 2
            continue
        depth, j = 0, start + 1
        while j < len(text):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                break
            j += 1
        yield text[start + 2:j]
        i = j + 1


def walk(value: Any) -> Iterator[Any]:
    """Every dict, list and scalar in a parsed value, depth first."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def blocks(parsed: dict, kind: str) -> Iterator[tuple[list[str], dict]]:
    """(labels, body) of every `kind` block: resource "t" "n" {...} -> (["t", "n"], {...})."""
    for entry in parsed.get(kind, []):
        yield from _labelled(entry, [])


def _labelled(entry: dict, labels: list[str]) -> Iterator[tuple[list[str], dict]]:
    for key, body in entry.items():
        if key.startswith("__"):
            continue
        label = unquote(key)
        if isinstance(body, dict) and all(k.startswith("__") or k.startswith('"') for k in body) and any(
                k.startswith('"') for k in body):
            yield from _labelled(body, [*labels, label])
        else:
            yield [*labels, label], body


@dataclass
class Variable:
    name: str
    body: dict

    @property
    def required(self) -> bool:
        return "default" not in self.body


@dataclass
class Module:
    """One directory of .tf files, and the example variable files beside them (*.tfvars.example)."""

    path: Path
    files: dict[str, dict] = field(default_factory=dict)

    @classmethod
    @cache
    def read(cls, path: Path) -> Module:
        """Parsed once per directory: module calls read the modules they call again."""
        module = cls(path)
        for tf in sorted([*path.glob("*.tf"), *path.glob("*.tfvars.example")]):
            try:
                module.files[tf.name] = hcl2.loads(tf.read_text())
            except Exception as exc:  # noqa: BLE001 - name the file that does not parse
                raise AssertionError(f"{tf}: python-hcl2 cannot parse it: {exc}") from exc
        return module

    def each(self, kind: str) -> Iterator[tuple[str, list[str], dict]]:
        for name, parsed in self.files.items():
            for labels, body in blocks(parsed, kind):
                yield name, labels, body

    @cached_property
    def variables(self) -> dict[str, Variable]:
        return {labels[0]: Variable(labels[0], body) for _, labels, body in self.each("variable")}

    @cached_property
    def locals(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for parsed in self.files.values():
            for entry in parsed.get("locals", []):
                found.update({k: v for k, v in entry.items() if not k.startswith("__")})
        return found

    @cached_property
    def declared(self) -> set[tuple[str, str]]:
        names = {("var", name) for name in self.variables} | {("local", name) for name in self.locals}
        names |= {("module", labels[0]) for _, labels, _ in self.each("module")}
        names |= {("data", f"{labels[0]}.{labels[1]}") for _, labels, _ in self.each("data")}
        names |= {(labels[0], labels[1]) for _, labels, _ in self.each("resource")}
        return names

    def references(self) -> Iterator[tuple[str, tuple[str, str]]]:
        """(file, (kind, name)) of every var./local./module./data. and resource reference."""
        for name, parsed in self.files.items():
            for value in walk(parsed):
                if not isinstance(value, str):
                    continue
                for expression in expressions(value):
                    for kind, first, second in REFERENCE.findall(expression):
                        if kind == "data":
                            yield name, ("data", f"{first}.{second}")
                        else:
                            yield name, (kind, first)

    def undeclared(self) -> list[str]:
        return sorted({f"{self.path.name}/{file}: {kind}.{name}" for file, (kind, name) in self.references()
                       if (kind, name) not in self.declared})

    def unused(self) -> list[str]:
        """Variables, locals and data sources that nothing in the module refers to: dead code."""
        referred = {name for _, name in self.references()}
        return sorted(f"{self.path.name}: {kind}.{name}" for kind, name in self.declared
                      if kind in ("var", "local", "data") and (kind, name) not in referred)

    def module_calls(self) -> Iterator[tuple[str, dict, Path]]:
        for _, labels, body in self.each("module"):
            yield labels[0], body, (self.path / unquote(body["source"])).resolve()

    def ascep_names(self) -> dict[str, str | None]:
        """Every ASCEP_* name the code passes, with its value when that is a literal string: keys of objects
        and maps (environments, property groups, settings), also inside function calls such as merge() and
        jsonencode(), and strings "ASCEP_..." in expressions (ECS secrets). Descriptions and comments are not
        code, so names there do not count."""
        found: dict[str, str | None] = {}
        for parsed in self.files.values():
            for value in walk(parsed):
                if isinstance(value, dict):
                    for key, item in value.items():
                        if ASCEP_NAME.fullmatch(unquote(key)):
                            found[unquote(key)] = unquote(item) if is_literal(item) else None
                elif isinstance(value, str):
                    for expression in expressions(value):
                        for name in ASCEP_NAME.findall(expression):
                            found.setdefault(name, None)
        return found


def modules_under(root: Path) -> list[Module]:
    return [Module.read(path.resolve()) for path in sorted({tf.parent for tf in root.rglob("*.tf")})
            if ".terraform" not in path.parts]


def call_problems(module: Module) -> list[str]:
    """Module calls that pass an input the called module does not declare, or leave out a required one."""
    problems = []
    for name, body, target in module.module_calls():
        called = Module.read(target)
        passed = {key for key in body if not key.startswith("__")} - META_ARGUMENTS
        where = f"{module.path.name}: module {name}"
        for unknown in sorted(passed - called.variables.keys()):
            problems.append(f"{where} passes {unknown!r}, which {target.name} does not declare")
        for missing in sorted(v.name for v in called.variables.values() if v.required and v.name not in passed):
            problems.append(f"{where} leaves out {missing!r}, which {target.name} requires")
    return problems


def variable_problems(module: Module) -> list[str]:
    problems = []
    for variable in module.variables.values():
        if "type" not in variable.body:
            problems.append(f"{module.path.name}: variable {variable.name} has no type")
        if not unquote(variable.body.get("description", "")).strip():
            problems.append(f"{module.path.name}: variable {variable.name} has no description")
    return problems


def setting_problem(name: str) -> str | None:
    """Why `name` is not an environment variable of a Settings field, or None: the product's own check
    (core.settings.check_env_name), which the Managed Flink entry point applies to its properties too."""
    try:
        check_env_name(name)
    except UnknownSetting as exc:
        return str(exc)
    return None


def placeholder_for(name: str) -> str | None:
    """A value for a setting the Terraform passes by reference (a variable, a resource attribute), so that the
    literal ones can be checked together: a string setting gets a string, anything else is left out."""
    parts = name.removeprefix("ASCEP_").lower().split("__")
    model: Any = Settings
    for part in parts:
        annotation = model.model_fields[part].annotation
        nested = [c for c in (typing.get_args(annotation) or (annotation,)) if isinstance(c, type)
                  and issubclass(c, BaseModel)]
        if not nested:
            return "placeholder" if str in (typing.get_args(annotation) or (annotation,)) else None
        model = nested[0]
    return None
