"""A file uploaded as a block blob with Entra ID credentials, as a Pulumi dynamic resource.

azure-native's `storage.Blob` signs its requests with the account key (pulumi-azure-native issue 2015), so against an
account with shared-key access off it fails with 403 KeyBasedAuthenticationNotPermitted, on create and on destroy.
This resource talks to the Blob service itself with `DefaultAzureCredential` (the deployer's `az login`, a CI
workload identity, ...), which needs the data-plane role Storage Blob Data Contributor on the container.

Create and update upload (overwrite) and record the content hash; a changed hash is an update, a changed container
or blob name a replacement; delete removes the blob (already gone counts as deleted). A new role assignment can take
minutes to reach the Blob service, so a 403 AuthorizationPermissionMismatch is retried for a while before it fails.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.dynamic

from azure.core.credentials import TokenCredential
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob import ContainerClient, ContentSettings

# Azure RBAC: "role assignment changes can take up to 10 minutes to take effect" (Microsoft's RBAC troubleshooting).
PERMISSION_PROPAGATION_SECONDS = 600.0
RETRY_INTERVAL_SECONDS = 15.0
# RBAC has not (yet) granted the caller the data action.
PERMISSION_DENIED = "AuthorizationPermissionMismatch"
# The storage firewall refused the caller's network (public network access off, or an IP rule missing).
NETWORK_DENIED = "AuthorizationFailure"


class UploadError(Exception):
    """An upload that cannot succeed as configured, worded for the deployer (one line, says what to do)."""


@dataclass(frozen=True, kw_only=True)
class BlobTarget:
    container_url: str
    blob_name: str

    @property
    def url(self) -> str:
        return f"{self.container_url.rstrip('/')}/{self.blob_name}"


def upload_file(target: BlobTarget, *, path: str, sha256: str, content_type: str, credential: TokenCredential,
                connection_verify: bool | str = True, patience_seconds: float = PERMISSION_PROPAGATION_SECONDS,
                sleep: Callable[[float], None] = time.sleep) -> None:
    """Upload `path` over `target` (block blob, overwritten), its hash in the blob's metadata."""
    container = ContainerClient.from_container_url(target.container_url, credential=credential,
                                                   connection_verify=connection_verify)
    blob = container.get_blob_client(target.blob_name)
    deadline = time.monotonic() + patience_seconds
    while True:
        try:
            with open(path, "rb") as data:
                blob.upload_blob(data, overwrite=True, metadata={"sha256": sha256},
                                 content_settings=ContentSettings(content_type=content_type))
            return
        except HttpResponseError as error:
            if _error_code(error) == PERMISSION_DENIED and time.monotonic() < deadline:
                sleep(RETRY_INTERVAL_SECONDS)
                continue
            raise UploadError(_explain(target, error)) from None


def delete_blob(target: BlobTarget, *, credential: TokenCredential, connection_verify: bool | str = True) -> None:
    container = ContainerClient.from_container_url(target.container_url, credential=credential,
                                                   connection_verify=connection_verify)
    try:
        container.get_blob_client(target.blob_name).delete_blob(delete_snapshots="include")
    except ResourceNotFoundError:
        return  # the blob (or its container) is already gone: nothing left to delete
    except HttpResponseError as error:
        raise UploadError(_explain(target, error)) from None


def _error_code(error: HttpResponseError) -> str | None:
    """The Storage error code the SDK attaches (a StorageErrorCode enum, or a plain string), if any."""
    code = getattr(error, "error_code", None)
    return None if code is None else str(getattr(code, "value", code))


def _explain(target: BlobTarget, error: HttpResponseError) -> str:
    code = _error_code(error) or "error"
    if code == PERMISSION_DENIED:
        return (f"{target.url}: 403 {code}: the deployer's identity lacks Storage Blob Data Contributor on the "
                "container (or the assignment has not propagated yet; run `pulumi up` again in a few minutes)")
    if code == NETWORK_DENIED:
        return (f"{target.url}: 403 {code}: the storage firewall refused this machine; add its public IP to "
                "babybloom:network.deployerIpRanges (docs/babybloom.md, 'Deploying prod')")
    if code == "KeyBasedAuthenticationNotPermitted":
        return f"{target.url}: 403 {code}: a key was used although the account accepts Entra ID only"
    detail = error.message.splitlines()[0] if error.message else str(error)
    return f"{target.url}: {error.status_code} {code}: {detail}"


def _default_credential() -> TokenCredential:
    from azure.identity import DefaultAzureCredential  # imported where used: the provider runs in its own process

    return DefaultAzureCredential()


class BlobUploadProvider(pulumi.dynamic.ResourceProvider):
    """create/update/delete of one uploaded blob; state: container_url, blob_name, path, sha256, content_type, url."""

    def create(self, props: dict[str, Any]) -> pulumi.dynamic.CreateResult:
        target = BlobTarget(container_url=props["container_url"], blob_name=props["blob_name"])
        upload_file(target, path=props["path"], sha256=props["sha256"], content_type=props["content_type"],
                    credential=_default_credential())
        return pulumi.dynamic.CreateResult(id_=target.url, outs={**props, "url": target.url})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.DiffResult:
        # Where the file came from on the deployer's disk is not a change; what it contains is.
        replaces = [key for key in ("container_url", "blob_name") if olds.get(key) != news.get(key)]
        changed = replaces or [key for key in ("sha256", "content_type") if olds.get(key) != news.get(key)]
        return pulumi.dynamic.DiffResult(changes=bool(changed), replaces=replaces, delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> pulumi.dynamic.UpdateResult:
        target = BlobTarget(container_url=news["container_url"], blob_name=news["blob_name"])
        upload_file(target, path=news["path"], sha256=news["sha256"], content_type=news["content_type"],
                    credential=_default_credential())
        return pulumi.dynamic.UpdateResult(outs={**news, "url": target.url})

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        delete_blob(BlobTarget(container_url=props["container_url"], blob_name=props["blob_name"]),
                    credential=_default_credential())


class UploadedBlob(pulumi.dynamic.Resource):
    """`path` as block blob `blob_name` in the container at `container_url`, uploaded with Entra ID."""

    url: pulumi.Output[str]
    sha256: pulumi.Output[str]

    def __init__(self, name: str, *, container_url: pulumi.Input[str], blob_name: str, path: str, sha256: str,
                 content_type: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(BlobUploadProvider(), name, {
            "container_url": container_url, "blob_name": blob_name, "path": path, "sha256": sha256,
            "content_type": content_type, "url": None,
        }, opts)
