"""A real S3 endpoint for the lake tests: moto's server, in this process, on a free port.

It can be stopped and started again on the same port with its buckets kept (moto's state lives in
the process), which is how the tests take S3 down for a while.
"""
from __future__ import annotations

import os
import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ascep.services import free_port


class S3Server:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedMotoServer | None = None

    def start(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def stop(self) -> None:
        """Close the listening socket too, so clients get 'connection refused' as from a dead server."""
        self._server.stop()
        self._server._server.server_close()
        self._server = None

    def new_bucket(self) -> str:
        name = f"lake-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1").create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> dict[str, bytes]:
        client = boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")
        out = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                out[item["Key"]] = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
        return out


@pytest.fixture(scope="session")
def s3():
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(name, value)
    server = S3Server()
    server.start()
    yield server
    if server._server is not None:
        server.stop()
