"""The Dockerfiles, checked without a Docker engine (none runs here, so the images are not built in these tests):
every instruction is one Docker knows, every base image is pinned to a version, the images compose runs are not
root, every file they copy exists and is in the build context, and the Flink image is the Flink of the wheel."""
from __future__ import annotations

import fnmatch
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from compose_testing import FLINK_TARGET, PRODUCT_TARGET, ROOT, dockerfile_stages, json_or_shell, services

DOCKERFILES = sorted(ROOT.glob("infrastructure/docker/**/Dockerfile*"))
PINNED = re.compile(r"^[\w./-]+:(?=[^:]*\d+\.\d+)[\w.-]+(@sha256:[0-9a-f]{64})?$")  # a tag naming x.y at least


def stage_targets() -> set[tuple[Path, str]]:
    """The (Dockerfile, stage) pairs docker-compose.yml builds: the images that run."""
    return {((ROOT / spec["build"]["context"] / spec["build"]["dockerfile"]).resolve(), spec["build"]["target"])
            for spec in services().values() if "build" in spec}


def test_there_are_dockerfiles_and_compose_builds_from_them():
    assert DOCKERFILES
    assert {path for path, _ in stage_targets()} <= {path.resolve() for path in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_base_image_is_pinned_to_a_version(dockerfile):
    stages = dockerfile_stages(dockerfile)
    for stage in stages.values():
        if stage.base in stages:
            continue  # an earlier stage of this file
        assert "$" not in stage.base, f"{dockerfile}:{stage.line}: FROM {stage.base}: a variable hides what is pinned"
        assert PINNED.match(stage.base), (f"{dockerfile}:{stage.line}: FROM {stage.base} is not pinned to a "
                                          f"version tag (IMAGE:X.Y...)")


@pytest.mark.parametrize("dockerfile,target", sorted(stage_targets()), ids=lambda v: getattr(v, "name", v))
def test_the_images_compose_runs_are_not_root(dockerfile, target):
    stage = dockerfile_stages(dockerfile)[target]
    user = stage.last("USER")
    assert user is not None, f"{dockerfile}: stage {target} sets no USER, so it runs as its base's user"
    assert user[1].split(":")[0] not in {"root", "0"}, f"{dockerfile}:{user[0]}: stage {target} runs as {user[1]}"


def docker_ignored(path: str, patterns: list[str]) -> bool:
    """.dockerignore's rule, for paths relative to the context: the last pattern that matches the path or one of
    its parent directories decides, a `!` pattern letting it back in; `**/` matches any depth, none included."""
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        glob = pattern.lstrip("!").strip("/")
        if any(fnmatch.fnmatchcase(prefix, g) for prefix in prefixes for g in {glob, glob.removeprefix("**/")}):
            ignored = not pattern.startswith("!")
    return ignored


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def test_dockerignore_rule_as_read_here():
    patterns = dockerignore()
    assert not docker_ignored("core/settings.py", patterns)
    assert docker_ignored("tests/conftest.py", patterns) and docker_ignored(".venv/bin/python", patterns)
    assert docker_ignored("core/__pycache__/settings.cpython-311.pyc", patterns)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_copied_file_exists_and_is_in_the_build_context(dockerfile):
    """Sources are relative to the context compose builds with: the repository root."""
    patterns = dockerignore()
    for stage in dockerfile_stages(dockerfile).values():
        for line, instruction, args in stage.instructions:
            if instruction not in {"COPY", "ADD"}:
                continue
            words = [word for word in args.split() if not word.startswith("--")]
            if any(word.startswith("--from=") for word in args.split()):
                continue  # from another stage
            for source in words[:-1]:
                assert (ROOT / source).exists(), f"{dockerfile}:{line}: {instruction} {source}: no such file here"
                assert not docker_ignored(source, patterns), f"{dockerfile}:{line}: {source} is in .dockerignore"


def test_the_flink_image_is_the_flink_release_of_the_pyflink_wheel():
    """`ascep job run --flink` submits with the wheel's Flink client: the cluster must run the same release."""
    [(dockerfile, _)] = [pair for pair in stage_targets() if pair[1] == FLINK_TARGET]
    base = dockerfile_stages(dockerfile)[FLINK_TARGET].base
    assert base.startswith("flink:"), f"the Flink image is built on {base}, not the official flink image"
    assert base.split(":")[1].split("-")[0] == version("apache-flink"), (base, version("apache-flink"))
    assert "java17" in base, f"{base}: Flink on Java 17 is what the product image runs"


def test_the_build_stage_copies_every_package_the_project_installs_and_its_build_script():
    """pip install . in the image installs what it was given: a package left out (clients once was) fails at run
    time, and without setup.py the rule engine is not compiled."""
    [(dockerfile, _)] = [pair for pair in stage_targets() if pair[1] == PRODUCT_TARGET]
    copied = {word for stage in dockerfile_stages(dockerfile).values() for _, instruction, args in stage.instructions
              if instruction == "COPY" and "--from=" not in args for word in args.split()[:-1]}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {pattern.removesuffix("*") for pattern in declared} | {"setup.py", "pyproject.toml"} <= copied


def test_the_product_image_runs_ascep():
    [(dockerfile, _)] = [pair for pair in stage_targets() if pair[1] == PRODUCT_TARGET]
    entrypoint = dockerfile_stages(dockerfile)[PRODUCT_TARGET].last("ENTRYPOINT")
    assert entrypoint is not None and json_or_shell(entrypoint[1]) == ["ascep"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["ascep"] == "ascep.cli:main"


def test_the_dockerfile_reader_refuses_what_docker_would(tmp_path):
    """The checks above rest on this reader: an unknown instruction is reported with its line."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12.5\nRUN true \\\n  && true\nCOPPY a b\n")
    with pytest.raises(ValueError, match=r":4: unknown instruction 'COPPY'"):
        dockerfile_stages(bad)
