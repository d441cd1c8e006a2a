"""Registry storage: backends (filesystem, S3), the distribution layout, manifest parsing.

``open_storage`` turns the operator's ``--storage`` argument into a backend: a folder (the
filesystem driver's rootdirectory, the one holding ``docker/registry/v2``) or
``s3://BUCKET[/ROOTDIRECTORY]``.
"""
from __future__ import annotations

from ..errors import InvalidInput
from .storage import FilesystemStorage, Storage, StorageError


def parse_s3_spec(spec: str) -> tuple[str, str]:
    """'s3://bucket/a/b' -> ('bucket', '/a/b'); the rootdirectory may be empty."""
    rest = spec[len("s3://"):]
    bucket, _, root = rest.partition("/")
    if not bucket:
        raise InvalidInput(f"no bucket in storage {spec!r}",
                           hint="give the storage as s3://BUCKET[/ROOTDIRECTORY]",
                           reference="storage-spec-invalid")
    return bucket, "/" + root.strip("/") if root.strip("/") else ""


def open_storage(spec: str, *, s3_endpoint: str | None = None, s3_region: str | None = None,
                 s3_access_key: str | None = None, s3_secret_key: str | None = None) -> Storage:
    """A Storage for a folder or an ``s3://bucket[/rootdirectory]`` (credentials: the keys
    given, e.g. from harbor.yml, else the usual AWS environment variables)."""
    if spec.startswith("s3://"):
        from .s3 import S3Storage
        bucket, root = parse_s3_spec(spec)
        return S3Storage(bucket, root, endpoint_url=s3_endpoint, region=s3_region,
                         access_key=s3_access_key, secret_key=s3_secret_key)
    return FilesystemStorage(spec)


__all__ = ["FilesystemStorage", "Storage", "StorageError", "open_storage", "parse_s3_spec"]
