"""The package upload's own code (constructs/azure/blob_upload.py, run by the Pulumi program at deploy) against
Azurite over HTTPS with OAuth bearer tokens: no account key anywhere in the path, as against a real account with
shared-key access off.

Azurite checks a bearer token's issuer, audience and lifetime (`--oauth basic`, HTTPS only); the test hands the
upload a TokenCredential that issues such tokens, and shows Azurite refusing a token for another audience, so a pass
means the requests really were authorized by the token.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import ContainerClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from refarch.constructs.azure import blob_upload
from refarch.constructs.azure.blob_upload import BlobTarget, UploadError, delete_blob, upload_file

from tests.servers import ServerProcess, wait_until

ROOT = Path(__file__).resolve().parents[3]
ACCOUNT = "devstoreaccount1"  # Azurite's account; it knows no other
STORAGE_SCOPE = "https://storage.azure.com/.default"
TENANT = "7d3c0f4e-5b1a-4c8e-9f2d-1a2b3c4d5e6f"


class BearerCredential:
    """A TokenCredential issuing what Entra ID issues for Storage (issuer, audience, lifetime); records its scopes."""

    def __init__(self, *, audience: str = "https://storage.azure.com") -> None:
        self.audience = audience
        self.scopes: list[str] = []
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def get_token(self, *scopes: str, **_: Any) -> AccessToken:
        self.scopes.extend(scopes)
        now = int(time.time())
        claims = {"iss": f"https://sts.windows.net/{TENANT}/", "aud": self.audience, "iat": now, "nbf": now,
                  "exp": now + 3600, "oid": str(uuid.uuid4()), "tid": TENANT}
        return AccessToken(jwt.encode(claims, self._key, algorithm="RS256"), now + 3600)


@dataclass(frozen=True)
class Azurite:
    blob_endpoint: str
    ca_file: str


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 (Azurite takes bearer tokens over HTTPS only)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with tempfile.TemporaryDirectory(prefix="azurite-oauth-") as workspace:
        cert, key = _self_signed(Path(workspace))
        server = ServerProcess("azurite-blob", [
            str(ROOT / "node_modules" / ".bin" / "azurite-blob"), "--inMemoryPersistence", "--disableTelemetry",
            "--skipApiVersionCheck", "--blobHost", "127.0.0.1", "--blobPort", "0",
            "--oauth", "basic", "--cert", str(cert), "--key", str(key),
        ], cwd=Path(workspace))
        try:
            deadline = time.monotonic() + 60
            port = server.wait_for(re.compile(r"Blob service successfully listens on https://\S+:(\d+)"), deadline)
            found = Azurite(blob_endpoint=f"https://127.0.0.1:{port.group(1)}/{ACCOUNT}", ca_file=str(cert))
            container = ContainerClient(found.blob_endpoint, "app-package", credential=BearerCredential(),
                                        connection_verify=found.ca_file)
            wait_until(container.create_container, deadline, "azurite over HTTPS with OAuth")
            yield found
        finally:
            server.stop()


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "released-package.zip"
    path.write_bytes(uuid.uuid4().bytes * 4096)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


def _target(azurite: Azurite) -> BlobTarget:
    return BlobTarget(container_url=f"{azurite.blob_endpoint}/app-package", blob_name="released-package.zip")


def test_upload_and_delete_authenticate_with_a_bearer_token(azurite: Azurite, package: tuple[Path, str]) -> None:
    path, digest = package
    credential = BearerCredential()
    upload_file(_target(azurite), path=str(path), sha256=digest, content_type="application/zip",
                credential=credential, connection_verify=azurite.ca_file)
    assert set(credential.scopes) == {STORAGE_SCOPE}
    reader = ContainerClient(f"{azurite.blob_endpoint}", "app-package", credential=BearerCredential(),
                             connection_verify=azurite.ca_file).get_blob_client("released-package.zip")
    properties = reader.get_blob_properties()
    assert properties.metadata == {"sha256": digest}
    assert properties.content_settings.content_type == "application/zip"
    assert reader.download_blob().readall() == path.read_bytes()
    # An update overwrites in place.
    path.write_bytes(b"new code")
    upload_file(_target(azurite), path=str(path), sha256="new", content_type="application/zip",
                credential=credential, connection_verify=azurite.ca_file)
    assert reader.download_blob().readall() == b"new code"
    delete_blob(_target(azurite), credential=credential, connection_verify=azurite.ca_file)
    assert not reader.exists()
    # Deleting what is already gone (a destroy after a manual clean-up) succeeds.
    delete_blob(_target(azurite), credential=credential, connection_verify=azurite.ca_file)


def test_azurite_really_checks_the_token(azurite: Azurite, package: tuple[Path, str]) -> None:
    path, digest = package
    with pytest.raises(UploadError, match=r"released-package\.zip: 403 AuthenticationFailed"):
        upload_file(_target(azurite), path=str(path), sha256=digest, content_type="application/zip",
                    credential=BearerCredential(audience="https://vault.azure.net"),
                    connection_verify=azurite.ca_file, patience_seconds=0)


def _denied(code: str) -> HttpResponseError:
    error = HttpResponseError(message=f"This request is not authorized to perform this operation ({code}).")
    error.status_code = 403
    error.error_code = code  # type: ignore[attr-defined]  # the Storage SDK attaches it the same way
    return error


def test_a_new_role_assignment_is_waited_for(monkeypatch: pytest.MonkeyPatch, package: tuple[Path, str]) -> None:
    """RBAC changes take minutes to reach the Blob service: 403 AuthorizationPermissionMismatch is retried."""
    path, digest = package
    attempts: list[int] = []

    def upload_blob(*_: Any, **__: Any) -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise _denied(blob_upload.PERMISSION_DENIED)

    monkeypatch.setattr("azure.storage.blob.BlobClient.upload_blob", upload_blob)
    slept: list[float] = []
    upload_file(BlobTarget(container_url="https://stpkgdev.blob.core.windows.net/app-package", blob_name="p.zip"),
                path=str(path), sha256=digest, content_type="application/zip", credential=BearerCredential(),
                sleep=slept.append)
    assert len(attempts) == 3
    assert slept == [blob_upload.RETRY_INTERVAL_SECONDS] * 2


@pytest.mark.parametrize(("code", "says"), [
    (blob_upload.PERMISSION_DENIED, "lacks Storage Blob Data Contributor"),
    (blob_upload.NETWORK_DENIED, "babybloom:network.deployerIpRanges"),
])
def test_a_lasting_refusal_is_one_line_saying_what_to_do(
    monkeypatch: pytest.MonkeyPatch, package: tuple[Path, str], code: str, says: str,
) -> None:
    path, digest = package

    def upload_blob(*_: Any, **__: Any) -> None:
        raise _denied(code)

    monkeypatch.setattr("azure.storage.blob.BlobClient.upload_blob", upload_blob)
    with pytest.raises(UploadError) as raised:
        upload_file(BlobTarget(container_url="https://stpkgdev.blob.core.windows.net/app-package",
                               blob_name="p.zip"),
                    path=str(path), sha256=digest, content_type="application/zip", credential=BearerCredential(),
                    patience_seconds=0, sleep=lambda _: None)
    message = str(raised.value)
    assert says in message
    assert f"403 {code}" in message
    assert "\n" not in message


PROPS = {"container_url": "https://stpkgdev.blob.core.windows.net/app-package", "blob_name": "released-package.zip",
         "path": "/home/ana/refarch/.build/a.zip", "sha256": "1" * 64, "content_type": "application/zip"}


@pytest.mark.parametrize(("change", "changes", "replaces"), [
    ({"path": "/ci/workspace/.build/a.zip"}, False, []),  # another machine, same bytes: nothing to do
    ({"sha256": "2" * 64}, True, []),  # new code: uploaded over the old blob
    ({"container_url": "https://stpkgprod.blob.core.windows.net/app-package"}, True, ["container_url"]),
    ({"blob_name": "other.zip"}, True, ["blob_name"]),
])
def test_what_a_change_does_to_the_uploaded_blob(change: dict[str, str], changes: bool, replaces: list[str]) -> None:
    diff = blob_upload.BlobUploadProvider().diff("id", dict(PROPS), {**PROPS, **change})
    assert diff.changes is changes
    assert list(diff.replaces or []) == replaces
