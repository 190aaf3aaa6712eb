"""docker-compose.yml, read without Docker: the Compose specification's schema, the product's commands and
settings in it, and the dependencies between its services.

The schema is the Compose specification's own (compose-spec/compose-spec, schema/compose-spec.json), as the
check-jsonschema package ships it (a dev extra): there is no network to fetch it from here.
"""
from __future__ import annotations

import json
import tomllib
from importlib.resources import files

import pytest
from compose_testing import (
    PRODUCT_TARGET,
    ROOT,
    built_from,
    depends_on,
    dockerfile_stages,
    environment,
    exec_form,
    load_compose,
    services,
)
from jsonschema.validators import validator_for

from ascep.cli import build_parser
from core.settings import UnknownSetting, check_env_name

CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}


def compose_schema() -> dict:
    return json.loads(files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").read_text())


def test_the_compose_file_follows_the_compose_specification():
    schema = compose_schema()
    errors = sorted(validator_for(schema)(schema).iter_errors(load_compose()), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors)


def test_the_schema_check_fails_on_a_wrong_key():
    """The check above can fail: a misspelt key is refused by the same schema."""
    compose = load_compose()
    compose["services"]["dashboard"]["depend_on"] = compose["services"]["dashboard"].pop("depends_on")
    schema = compose_schema()
    assert any("depend_on" in error.message for error in validator_for(schema)(schema).iter_errors(compose))


@pytest.mark.parametrize("name", [name for name, spec in services().items() if built_from(spec) == PRODUCT_TARGET])
def test_every_product_service_runs_an_ascep_command_that_exists(name):
    """The product image's entry point is `ascep`: each service's command must parse as its arguments."""
    command = exec_form(services()[name]["command"], f"services.{name}.command")
    try:
        build_parser().parse_args(command)
    except SystemExit as exc:
        pytest.fail(f"services.{name}.command {command}: `ascep` refuses it (exit {exc.code}; its message is above)")


def known_setting(env_name: str) -> bool:
    """The product's own check (core.settings.check_env_name), as the Terraform's test and Managed Flink use."""
    try:
        check_env_name(env_name)
    except UnknownSetting:
        return False
    return True


def test_every_ascep_variable_in_the_compose_file_is_a_setting():
    unknown = sorted(f"services.{name}.environment.{variable}" for name, spec in services().items()
                     for variable in environment(spec) if variable.startswith("ASCEP_") and not known_setting(variable))
    assert not unknown, f"not settings of core.settings.Settings (docs/configuration.md): {unknown}"
    assert not known_setting("ASCEP_JOB__PARTITON") and known_setting("ASCEP_ARBITRAGE__TAKER_FEES_BPS__KRAKEN")


def test_each_dependency_names_a_service_and_a_condition_it_can_meet():
    """service_healthy needs a health check on the other side; service_completed_successfully a one-shot that
    is not restarted (or it would never count as completed)."""
    specs = services()
    problems = []
    for name, spec in specs.items():
        for other, condition in depends_on(spec).items():
            where = f"services.{name}.depends_on.{other}"
            if other not in specs:
                problems.append(f"{where}: no such service")
            elif condition not in CONDITIONS:
                problems.append(f"{where}: unknown condition {condition}")
            elif condition == "service_healthy" and "healthcheck" not in specs[other]:
                problems.append(f"{where}: service_healthy, but {other} has no healthcheck")
            elif condition == "service_completed_successfully" and specs[other].get("restart", "no") != "no":
                problems.append(f"{where}: completed_successfully, but {other} restarts ({specs[other]['restart']})")
            elif set(specs[other].get("profiles", [])) - set(spec.get("profiles", [])):
                problems.append(f"{where}: {other} runs only under a profile {name} is not in")
    assert not problems, "\n".join(problems)


def test_the_images_are_the_dockerfile_stages_tagged_with_the_project_version():
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    for name, spec in services().items():
        if "build" not in spec:
            assert ":" in spec["image"] and not spec["image"].endswith(":latest"), f"services.{name}: pin the image"
            continue
        dockerfile = ROOT / spec["build"]["context"] / spec["build"]["dockerfile"]
        assert spec["build"]["target"] in dockerfile_stages(dockerfile), f"services.{name}: no such stage"
        assert spec["image"].endswith(f":{version}"), f"services.{name}: image {spec['image']}, project {version}"
