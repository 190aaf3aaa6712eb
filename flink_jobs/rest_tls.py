"""Mutual TLS on the local MiniCluster's REST API: a client without the job's own certificate is refused at the
handshake, before any handler runs, so it can neither submit, cancel nor read jobs.

Flink 2.3 has no REST setting that refuses cancellation (web.cancel.enable only hides the web UI's button) or
job submission (web.submit.enable only removes the jar handlers; POST /jobs stays), and nothing of ours uses
the embedded job's REST API: PyFlink's local executor hands the job to the MiniCluster in process. So the
endpoint is closed to everyone: each start makes a new key pair in a PKCS12 keystore under a new random password
that lives only in this process and the Flink configuration it builds (keytool reads it from its environment,
never its command line). The keystore file alone is useless without it, and it is useless after the job ends;
nothing secret outlives the run. The keystore serves as its own truststore (Flink's documented setup for a
self-signed certificate): the only client certificate accepted is the endpoint's own.
"""
from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

DIRECTORY = "tls"  # under the state directory
KEYSTORE = "flink-rest.p12"
CERTIFICATE = "flink-rest.crt"  # the endpoint's certificate, PEM: public, for whoever checks what listens
SUBJECT = "CN=ascep-flink-rest"
_PASSWORD_VARIABLE = "ASCEP_FLINK_REST_STORE_PASSWORD"
PROTOCOL = "TLSv1.3"
# Flink's default is TLSv1.2 with TLS_RSA_WITH_AES_128_CBC_SHA alone; these are TLS 1.3's.
CIPHER_SUITES = "TLS_AES_256_GCM_SHA384,TLS_AES_128_GCM_SHA256,TLS_CHACHA20_POLY1305_SHA256"


@dataclass(frozen=True)
class RestTls:
    keystore: Path
    certificate: Path
    password: str = field(repr=False)

    def options(self) -> dict[str, str]:
        """The Flink options that put mutual TLS on the REST endpoint (and only there: security.ssl.internal.*
        stay off; the MiniCluster's RPC and BLOB server bind 127.0.0.1)."""
        store = str(self.keystore)
        return {
            "security.ssl.rest.enabled": "true",
            "security.ssl.rest.authentication-enabled": "true",
            "security.ssl.rest.keystore": store,
            "security.ssl.rest.keystore-type": "PKCS12",
            "security.ssl.rest.keystore-password": self.password,
            "security.ssl.rest.key-password": self.password,
            "security.ssl.rest.truststore": store,
            "security.ssl.rest.truststore-type": "PKCS12",
            "security.ssl.rest.truststore-password": self.password,
            "security.ssl.protocol": PROTOCOL,
            "security.ssl.algorithms": CIPHER_SUITES,
        }


def keytool() -> str:
    """The JDK's keytool next to the `java` that runs Flink (JAVA_HOME first, as Flink's scripts look)."""
    candidates = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]) / "bin" / "keytool")
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent / "keytool")
    for candidate in candidates:
        if candidate.exists():
            return str(candidate)
    found = shutil.which("keytool")
    if found is None:
        raise RuntimeError("keytool not found next to java (JAVA_HOME or PATH): it comes with the JDK "
                           "(openjdk-17-jre-headless) and makes the key of the Flink REST API's TLS")
    return found


def generate(directory: Path) -> RestTls:
    """A new key pair and self-signed certificate in `directory` (mode 0700, files 0600), under a new password."""
    directory = directory.resolve()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    directory.chmod(0o700)
    keystore, certificate = directory / KEYSTORE, directory / CERTIFICATE
    for stale in (keystore, certificate):
        stale.unlink(missing_ok=True)
    password = secrets.token_urlsafe(32)
    env = {**os.environ, _PASSWORD_VARIABLE: password}
    tool = keytool()
    common = ["-alias", "flink-rest", "-keystore", str(keystore), "-storetype", "PKCS12",
              "-storepass:env", _PASSWORD_VARIABLE]
    for argv in ([tool, "-genkeypair", *common, "-keypass:env", _PASSWORD_VARIABLE, "-keyalg", "EC",
                  "-groupname", "secp256r1", "-dname", SUBJECT, "-ext", "SAN=ip:127.0.0.1,dns:localhost",
                  "-validity", "3650"],
                 [tool, "-exportcert", *common, "-rfc", "-file", str(certificate)]):
        done = subprocess.run(argv, env=env, umask=0o077, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"keytool {argv[1]} failed ({done.returncode}): {(done.stdout + done.stderr).strip()}")
    for path in (keystore, certificate):
        path.chmod(0o600)
    return RestTls(keystore, certificate, password)
