"""What the maintenance Lambda's zip must hold. The handler, with the project's code copied beside it as build.py
copies it, compacts a lake and publishes the consumer lag from Redis in a process where every import but the
standard library, the Lambda runtime's boto3, the managed layer's pyarrow and numpy, and what requirements.txt pins
(at the versions tested here) fails, as it would in the Lambda. The zip's wheels come from PyPI, so the build
itself is not run here."""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from importlib.metadata import version
from pathlib import Path

import boto3

from core.contracts.redis_keys import progress_field, topic_end_field
from core.contracts.tick import Tick
from core.progress import Progress
from flink_jobs.sinks.redis_sink import RedisSink
from lake.storage import open_lake
from lake.writer import LakeWriter
from tests.lake.synthetic import TOPIC_ID

HERE = Path(__file__).resolve().parents[2] / "infrastructure" / "lambda" / "maintenance"
RUNTIME = {"boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six"}  # python3.12 runtime
LAYER = {"pyarrow", "numpy"}  # AWS SDK for pandas managed layer
PINNED = {"orjson": {"orjson"}, "pydantic": {"pydantic", "pydantic_core", "annotated_types", "typing_extensions",
                                             "typing_inspection"},
          "pydantic-settings": {"pydantic_settings", "dotenv"}, "redis": {"redis", "jwt"}}

IN_THE_LAMBDA = """
import json, os, sys
zip_dir, allowed = sys.argv[1], {"handler", "core", "lake", *sys.argv[2].split(",")}

class NotInTheLambda:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if not (top in allowed or top in sys.stdlib_module_names or top.startswith("_")):
            raise ModuleNotFoundError(f"No module named {name!r} in the Lambda", name=name)

sys.meta_path.insert(0, NotInTheLambda())
sys.path.insert(0, zip_dir)
import handler

class Context:
    def get_remaining_time_in_millis(self):
        return 900_000

result = handler.handler({"actions": ["lag", "compact"]}, Context())
print(json.dumps({"result": result, "files": {name: getattr(sys.modules[name], "__file__", "")
                                              for name in ("handler", "core", "lake")}}), flush=True)
# The Lambda runtime keeps the interpreter between invocations, so its teardown is none of this test's business,
# and Arrow's thread pools sometimes abort it ("terminate called without an active exception", apache/arrow#34314)
os._exit(0)
"""


def write_small_lake(root: Path) -> None:
    """Twelve small ranges of ticks three hours ago: a closed hour."""
    lake = open_lake(str(root))
    writer = LakeWriter(lake, topic_id=TOPIC_ID, tick_range=10)
    start = int(time.time() * 1000) - 3 * 3_600_000
    for offset in range(120):
        writer.add_ticks(0, offset, (Tick("binance", "BTC/USDT", 100.0, 100.1, 1.0, 1.0, start + offset * 1_000),))
    writer.flush(0, 119)


def test_the_zip_holds_what_the_handler_needs_beside_the_runtime_and_the_layer(tmp_path, s3, redis_url):
    spec = importlib.util.spec_from_file_location("maintenance_build", HERE / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    zip_dir = tmp_path / "zip"
    zip_dir.mkdir()
    build.copy_sources(zip_dir)
    write_small_lake(tmp_path / "lake")
    allowed = RUNTIME | LAYER | set().union(*PINNED.values())
    redis_db = redis_url.rsplit("/", 1)[0] + "/8"
    sink = RedisSink(redis_db)
    sink.client.flushdb()
    sink.report_progress(progress_field("read", "ticks", 0), Progress(3, 0, 0).to_json())
    sink.raise_topic_ends({topic_end_field("ticks", 0): 10})
    secret = boto3.client("secretsmanager", endpoint_url=s3.endpoint, region_name="us-east-1").create_secret(
        Name=f"package-{uuid.uuid4().hex[:8]}", SecretString=redis_db)["ARN"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASCEP_", "MAINTENANCE_"))}
    result = subprocess.run([sys.executable, "-I", "-c", IN_THE_LAMBDA, str(zip_dir), ",".join(sorted(allowed))],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path,
                            env={**env, "ASCEP_LAKE": str(tmp_path / "lake"), "MAINTENANCE_REDIS_URL_SECRET": secret,
                                 "AWS_ENDPOINT_URL_SECRETS_MANAGER": s3.endpoint,
                                 "AWS_ENDPOINT_URL_CLOUDWATCH": s3.endpoint})
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.splitlines()[-1])
    assert all(file.startswith(str(zip_dir)) for file in out["files"].values()), out["files"]
    assert out["result"]["compact"]["merged"] == 1 and out["result"]["compact"]["sources_deleted"] == 12
    assert out["result"]["lag"]["unread"] == {"read": 7}


def test_the_pinned_requirements_are_the_versions_tested_here():
    pins = dict(line.split("==") for line in (HERE / "requirements.txt").read_text().splitlines()
                if line and not line.startswith("#"))
    assert set(pins) == set(PINNED)
    assert {name: version(name) for name in pins} == pins
