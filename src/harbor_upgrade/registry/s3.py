"""The S3 storage driver's layout: keys ``<rootdirectory>/docker/registry/v2/<path>`` in a bucket.

distribution's s3 driver writes the filesystem paths as keys below the rootdirectory
without its leading ``/`` and creates no directory objects: a "folder" exists only as a
key prefix, so ``walk`` is one paginated ListObjectsV2 by prefix (1000 keys a page) and
an empty folder simply does not exist. Reads are one GET per object; the client is shared
by the backfill's worker threads (boto3 clients are thread-safe), so its connection pool
must be at least as large as the number of workers.

Link files cost no GET when a listing already proves their content: a link holds exactly a
digest, and for objects written with one PUT (as the driver writes links) the listed ETag
is the MD5 of the content. A revision link whose ETag is the MD5 of the digest its key
names, or a tag's current link whose ETag is the MD5 of one of the revisions listed just
before it in the same listing, holds that digest. Anything else (a corrupted link, multipart
or SSE-KMS ETags that are not MD5s) is fetched as usual. (``Layout`` lists the revisions so;
it reads each tag's current link with a GET, see below.)

Listings are grouped by a delimiter where the layout allows it (``walk_grouped``): S3
returns one CommonPrefix for every group of keys, which costs a service far less than a
listed key with its date, size and ETag. A repository costs three (``Layout``): its
revisions, its tag folders grouped at "/", and its ``_layers`` grouped at "/link" (one short
entry per link); then one GET per tag's current link. A service that answers such a listing
with the ungrouped keys (or refuses it) gets plain listings instead. Repository names come
from one "/" listing per folder (``listdir``), a few at once (``Layout.repositories``): a
service that keeps folders (SeaweedFS) answers those from one folder each, where any other
delimiter makes it walk every folder below, one filer request each (a tag's history is three
folders: walking it cost SeaweedFS more CPU than a GET of the tag's current link).

Object GETs and listing pages skip botocore's per-call machinery (endpoint rules, event hooks,
response parsing with dateutil for every listed key) and urllib3's (header parsing by the
email package): each is SigV4-signed by ``s3wire.Signer`` with the client's credentials and
sent on ``s3wire.Connections``, kept-alive sockets shared by the threads. Client CPU per GET
on SeaweedFS went 1.37 -> 0.18 ms, per repository listing (55 artifacts) 51 -> 10 ms. The URL
base (virtual-host or path style, regional endpoint) is the one the boto3 client itself
builds. Only a 200/206 answer, a 404 NoSuchKey and an empty-range 416 of a GET, and a 200
ListObjectsV2 result of a listing, are handled here; any other answer and any connection
error is asked again through boto3, whose standard retries back off on 5xx and dropped
connections and whose errors name the problem.

Every request has a connect and a read timeout (``timeout``), and an object's body is read
in bounded pieces against a deadline, so a server that stops answering (or drips) ends as
a storage error naming the object, never a hang. A body is never read past the limit it
is asked for (``Storage.read``): an object larger than that is ``ObjectTooLarge``.
"""
from __future__ import annotations

import hashlib
import os
import re
import ssl
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote, unquote_plus
from xml.etree import ElementTree

import boto3
import urllib3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from ..secrets import mask_text, register
from .s3wire import Connections, Signer
from .storage import MAX_OBJECT, V2, GroupingUnsupported, ObjectMissing, Storage, StorageError, safe_relpath, too_large

# Error codes S3 (and moto, MinIO, Ceph) use for "no such object" on GET/HEAD.
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId",
                           "SignatureDoesNotMatch", "AllAccessDisabled"})
_NO_BUCKET_CODES = frozenset({"NoSuchBucket"})
# What a service that cannot group by a delimiter other than "/" answers.
_GROUPING_REFUSED_CODES = frozenset({"NotImplemented", "InvalidArgument", "InvalidRequest"})

_REVISION_LINK = re.compile(r"(?:^|/)_manifests/revisions/([a-z0-9]+)/([a-f0-9]{32,128})/link$")
_TAG_CURRENT_LINK = re.compile(r"(?:^|/)_manifests/tags/[^/]+/current/link$")
# Links proven by a listing but not read yet; bounded so that a walk nobody reads from
# cannot grow memory (an evicted entry is simply fetched).
_KNOWN_LINKS_MAX = 100_000


def md5_hex(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def proven_link(rel: str, size: int, etag: str, listed_revisions: dict[str, str]) -> str | None:
    """The content of link object rel if its listing entry proves it, else None.

    listed_revisions maps MD5 -> digest of the revision links listed so far in the same
    listing; revision links are added to it (keys are listed in order, revisions before tags)."""
    etag = etag.strip('"')
    if len(etag) != 32:
        return None  # a multipart or encrypted object: its ETag is not the MD5 of its content
    m = _REVISION_LINK.search(rel)
    if m:
        digest = f"{m.group(1)}:{m.group(2)}"
        listed_revisions[md5_hex(digest)] = digest
    elif _TAG_CURRENT_LINK.search(rel):
        listed = listed_revisions.get(etag)
        if listed is None:
            return None
        digest = listed
    else:
        return None
    return digest if size == len(digest) and md5_hex(digest) == etag else None


def error_code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def key_prefix(rootdirectory: str) -> str:
    """The key prefix of ``docker/registry/v2`` for a driver rootdirectory ('/a/b/' -> 'a/b/docker/registry/v2/')."""
    root = rootdirectory.strip("/")
    return f"{root}/{V2}/" if root else f"{V2}/"


#: seconds to connect, and to wait for any answer (a response's head, each piece of its body)
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0
#: bodies are read in pieces of at most this many bytes, each against the object's deadline
_PIECE = 1 << 20
# error bodies are short XML documents: never more of them
_ERROR_BODY = 64 << 10
#: a page of 1000 listed keys of at most 1024 bytes each, url-encoded: never more
LIST_BODY_MAX = 16 << 20
# what SigV4 leaves unencoded in a query string
_QUERY_SAFE = "-_.~"


class ReadDeadline(StorageError):
    """A body still not read when its deadline passed (a server that drips or stalls)."""


def client_config(max_pool_connections: int, retries: int, timeout: float = READ_TIMEOUT,
                  connect_timeout: float = CONNECT_TIMEOUT) -> Config:
    # "standard" retries back off exponentially on throttling, 5xx and dropped connections;
    # checksums only when the API requires them: registry blobs are content-addressed and
    # verified by digest upstream, and the per-response CRC costs CPU on every small GET.
    return Config(max_pool_connections=max_pool_connections,
                  retries={"mode": "standard", "max_attempts": retries},
                  connect_timeout=connect_timeout, read_timeout=timeout,
                  request_checksum_calculation="when_required",
                  response_checksum_validation="when_required")


_PROBE_KEY = "harbor-upgrade-probe"


class _Captured(Exception):
    """Carries the URL and signing region of a GetObject request botocore was about to sign."""


def _capture(request, region_name, **_):
    raise _Captured(request.url, region_name)


def object_url_base(client, bucket: str) -> tuple[str, str]:
    """(the URL an object key is appended to, the SigV4 signing region), exactly as the boto3
    client's GetObject addresses the bucket: virtual-host or path style, regional or custom
    endpoint. The request is stopped before signing, so it contacts nobody."""
    event = "before-sign.s3.GetObject"
    client.meta.events.register_first(event, _capture, unique_id="harbor-upgrade-capture")
    try:
        client.get_object(Bucket=bucket, Key=_PROBE_KEY)
    except _Captured as c:
        url, region = c.args
    finally:
        client.meta.events.unregister(event, unique_id="harbor-upgrade-capture")
    base = url.split("?", 1)[0]
    if not base.endswith("/" + _PROBE_KEY):
        raise StorageError(f"unexpected S3 object URL form for bucket {bucket!r}")
    return base[:-len(_PROBE_KEY)], region


def ssl_context() -> ssl.SSLContext:
    """The system CA store, or the bundle named by AWS_CA_BUNDLE as botocore honours it."""
    return ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)


class SignedGetter:
    """GET of one object (or one listing page), SigV4-signed and sent on kept-alive
    connections (``s3wire``; thread-safe). Returns (status, body); raises OSError
    (``s3wire.WireError`` for an answer it does not speak, TimeoutError, ConnectionError)."""

    def __init__(self, base: str, credentials, region: str, max_connections: int,
                 timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT):
        self.base = base
        scheme, _, rest = base.partition("://")
        host, _, path = rest.partition("/")
        self.origin = f"{scheme}://{host}"
        self.path_prefix = "/" + path
        self.connections = Connections(base, max_connections, connect_timeout, timeout, ssl_context)
        self.signer = Signer(credentials, region, self.connections.host_header)
        # a whole body within this many seconds (each piece also within the read timeout)
        self.body_seconds = 4 * timeout

    def get(self, key: str, byte_range: str | None = None, limit: int = MAX_OBJECT) -> tuple[int, bytes]:
        """(status, body) of a GET; a 200/206 body longer than limit raises ObjectTooLarge
        after at most limit + 1 bytes, a body slower than its deadline ReadDeadline."""
        path = self.path_prefix + quote(key, safe="/~")
        headers = self.signer.headers(path)
        if byte_range:
            headers["range"] = byte_range
        return self._send(path, headers, limit, key)

    def list(self, params: dict[str, str]) -> tuple[int, bytes]:
        """(status, body) of a ListObjectsV2 of the bucket with these query parameters
        (a 200 body is at most LIST_BODY_MAX bytes)."""
        query = "&".join(f"{quote(k, safe=_QUERY_SAFE)}={quote(v, safe=_QUERY_SAFE)}"
                         for k, v in sorted(params.items()))
        path = self.path_prefix.rstrip("/") or "/"
        return self._send(f"{path}?{query}", self.signer.headers(path, query), LIST_BODY_MAX,
                          f"the listing of {params.get('prefix')}")

    def _send(self, target: str, headers: dict[str, str], limit: int, what: str) -> tuple[int, bytes]:
        response = self.connections.get(target, headers)
        status = response.status
        ok = status in (200, 206)
        try:
            body = read_bounded(response.read1, limit if ok else _ERROR_BODY,
                                declared=response.headers.get("content-length") if ok else None,
                                seconds=self.body_seconds, what=what)
        except _BodyTooLarge:
            response.close()   # the rest is never read: the connection goes, not back to the pool
            if ok:
                raise
            return status, b""  # an error answer nobody could parse: asked again through boto3
        except BaseException:
            response.close()
            raise
        response.release()
        return status, body

    def close(self) -> None:
        self.connections.close()


class _BodyTooLarge(Exception):
    def __init__(self, size: int | None):
        super().__init__(size)
        self.size = size


def read_bounded(read1, limit: int, declared: str | None, seconds: float, what: str) -> bytes:
    """A body through read1(n) (at most one receive each): at most limit bytes, or
    _BodyTooLarge having read at most limit + 1; ReadDeadline when it takes over seconds."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _BodyTooLarge(int(declared))
    deadline = time.monotonic() + seconds
    chunks, got = [], 0
    while chunk := read1(min(_PIECE, limit + 1 - got)):
        chunks.append(chunk)
        got += len(chunk)
        if got > limit:
            raise _BodyTooLarge(None)
        if time.monotonic() > deadline:
            raise ReadDeadline(f"S3 sent {what} too slowly: not complete after {seconds:.0f} s")
    return b"".join(chunks)


class _Unparsable(Exception):
    """A 200 listing answer that is not a ListObjectsV2 result (asked again through boto3)."""


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def parse_listing(body: bytes) -> dict:
    """A ListObjectsV2 answer in boto3's shape, with only what the walk uses: Contents (Key,
    Size, ETag), CommonPrefixes (Prefix), IsTruncated, NextContinuationToken. Keys and
    prefixes are url-decoded when the answer says EncodingType url (as boto3 decodes them).
    _Unparsable when it is not such an answer."""
    try:
        root = ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise _Unparsable(str(e)) from None
    if _local(root.tag) != "ListBucketResult":
        raise _Unparsable(root.tag)
    contents: list[dict] = []
    prefixes: list[dict] = []
    page: dict = {"Contents": contents, "CommonPrefixes": prefixes, "IsTruncated": False}
    encoded = False
    for child in root:
        tag = _local(child.tag)
        if tag == "Contents":
            entry: dict = {}
            for field in child:
                name = _local(field.tag)
                if name in ("Key", "ETag"):
                    entry[name] = field.text or ""
                elif name == "Size":
                    try:
                        entry["Size"] = int(field.text or "")
                    except ValueError:
                        raise _Unparsable(f"size {field.text!r}") from None
            if "Key" not in entry:
                raise _Unparsable("a listed object without a key")
            contents.append(entry)
        elif tag == "CommonPrefixes":
            prefixes += [{"Prefix": f.text or ""} for f in child if _local(f.tag) == "Prefix"]
        elif tag == "IsTruncated":
            page["IsTruncated"] = (child.text or "").strip().lower() == "true"
        elif tag == "NextContinuationToken":
            page["NextContinuationToken"] = child.text or ""
        elif tag == "EncodingType":
            encoded = (child.text or "").strip() == "url"
    if encoded:
        for entry in contents:
            entry["Key"] = unquote_plus(entry["Key"])
        for entry in prefixes:
            entry["Prefix"] = unquote_plus(entry["Prefix"])
    return page


def is_no_such_key(body: bytes) -> bool:
    # a 404 also answers a bucket deleted meanwhile (NoSuchBucket): only this one is "missing"
    return b"<Code>NoSuchKey</Code>" in body


class S3Storage(Storage):
    """Read-only access to a registry stored in an S3 bucket (or an S3-compatible service)."""

    # One ListObjectsV2 returns 1000 keys; one HEAD answers for one key.
    batch_listing = True

    def __init__(self, bucket: str, rootdirectory: str = "", endpoint_url: str | None = None,
                 region: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, *, max_pool_connections: int = 64,
                 retries: int = 5, timeout: float = READ_TIMEOUT, connect_timeout: float = CONNECT_TIMEOUT):
        if not bucket or "/" in bucket:
            raise StorageError(f"invalid S3 bucket name {bucket!r}",
                               hint="give the storage as s3://BUCKET[/ROOTDIRECTORY]")
        for secret in (secret_key, os.environ.get("AWS_SECRET_ACCESS_KEY"),
                       os.environ.get("AWS_SESSION_TOKEN")):
            register(secret)
        self.bucket = bucket
        self.prefix = key_prefix(rootdirectory)
        self.endpoint_url = endpoint_url
        root = rootdirectory.strip("/")
        self.description = f"s3://{bucket}/{root}" + (f" at {endpoint_url}" if endpoint_url else "")
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        # Explicit keys win; otherwise botocore's usual chain (AWS_* variables, profiles, roles).
        session = boto3.session.Session(aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                                        region_name=region)
        config = client_config(max_pool_connections, retries, timeout, connect_timeout)
        if endpoint_url:
            # S3-compatible services (and distribution's driver with regionendpoint) use path-style URLs.
            config = config.merge(Config(s3={"addressing_style": "path"}))
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)
        self._closed = threading.Event()
        self._known_links: OrderedDict[str, str] = OrderedDict()
        self._known_lock = threading.Lock()
        self._check_bucket()
        # credentials, URL and region exactly as the client resolved them (the bucket
        # check above proved they work)
        base, signing_region = object_url_base(self._client, bucket)
        self._getter = SignedGetter(base, session.get_credentials(), signing_region, max_pool_connections,
                                    timeout, connect_timeout)

    # ------------------------------------------------------------------ errors
    def _fail(self, err: Exception, what: str) -> StorageError:
        """Turn a botocore error into an operator error that names the object and never a secret."""
        where = self.description
        if isinstance(err, NoCredentialsError):
            return StorageError(f"no S3 credentials to read {where}",
                                hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or the storage_service "
                                     "s3 accesskey/secretkey in harbor.yml)")
        if isinstance(err, ClientError):
            code = error_code(err)
            if code in _NO_BUCKET_CODES:
                return StorageError(mask_text(f"S3 bucket {self.bucket!r} does not exist at "
                                              f"{self.endpoint_url or 'AWS'}"),
                                    hint="check the bucket name and --s3-endpoint/--s3-region")
            if code in _DENIED_CODES:
                return StorageError(mask_text(f"access denied reading {what} in {where} ({code})"),
                                    hint="check the S3 access key, secret key and the bucket policy")
            return StorageError(mask_text(f"S3 error reading {what} in {where}: {code} "
                                          f"{err.response.get('Error', {}).get('Message', '')}".rstrip()))
        return StorageError(mask_text(f"cannot reach S3 for {what} in {where}: {err}"),
                            hint="check --s3-endpoint, --s3-region and the network")

    @contextmanager
    def _errors(self, what: str):
        """Map botocore errors: a missing key -> ObjectMissing, anything else -> StorageError."""
        try:
            yield
        except ClientError as e:
            if error_code(e) in _MISSING_CODES:
                raise ObjectMissing(f"{what} is missing in {self.description}") from None
            raise self._fail(e, what) from None
        except BotoCoreError as e:
            raise self._fail(e, what) from None

    def _check_bucket(self) -> None:
        try:
            with self._errors("the bucket"):
                self._client.head_bucket(Bucket=self.bucket)
        except ObjectMissing:  # HEAD on a missing bucket answers a bare 404
            raise self._fail(ClientError({"Error": {"Code": "NoSuchBucket"}}, "HeadBucket"), "the bucket") from None

    def _key_prefix(self) -> str:
        if self._closed.is_set():
            raise StorageError(f"{self.description} was closed")
        return self.prefix

    def _key(self, path: str) -> str:
        return self._key_prefix() + safe_relpath(path)

    # ------------------------------------------------------------------ Storage
    def read(self, path: str, limit: int = MAX_OBJECT) -> bytes:
        key = self._key(path)
        with self._known_lock:
            known = self._known_links.pop(path, None)
        if known is not None:
            return known.encode()
        return self._get(path, key, None, limit)

    def read_head(self, path: str, length: int) -> bytes:
        key = self._key(path)
        return self._get(path, key, f"bytes=0-{max(length, 1) - 1}", length)[:length]

    def _get(self, path: str, key: str, byte_range: str | None, limit: int) -> bytes:
        try:
            status, body = self._getter.get(key, byte_range, limit)
        except _BodyTooLarge as e:
            raise too_large(path, self.description, limit, e.size) from None
        except (OSError, urllib3.exceptions.HTTPError):
            status, body = None, b""  # asked again through boto3, which retries and names the cause
        if status in (200, 206):
            return body
        if status == 404 and is_no_such_key(body):
            raise ObjectMissing(f"{path} is missing in {self.description}")
        if status == 416 and byte_range:
            return b""  # the object exists and is empty
        return self._boto_get(path, key, byte_range, limit)

    def _boto_get(self, path: str, key: str, byte_range: str | None, limit: int) -> bytes:
        """The GET through boto3: its retries, region redirects and error codes; the body
        bounded as in SignedGetter.get."""
        extra = {"Range": byte_range} if byte_range else {}
        with self._errors(path):
            try:
                answer = self._client.get_object(Bucket=self.bucket, Key=key, **extra)
            except ClientError as e:
                if byte_range and error_code(e) == "InvalidRange":  # the object exists and is empty
                    return b""
                raise
            body = answer["Body"]
            raw = getattr(body, "_raw_stream", None)
            read1 = getattr(raw, "read1", None) or body.read
            try:
                return read_bounded(read1, limit, str(answer.get("ContentLength", "")) or None,
                                    self._getter.body_seconds, path)
            except _BodyTooLarge as e:
                raise too_large(path, self.description, limit, e.size) from None
            except urllib3.exceptions.HTTPError as e:  # the body's connection broke or timed out
                raise self._fail(e, path) from None
            finally:
                body.close()

    def _head(self, path: str) -> dict | None:
        key = self._key(path)
        try:
            with self._errors(path):
                return self._client.head_object(Bucket=self.bucket, Key=key)
        except ObjectMissing:
            return None

    def exists(self, path: str) -> bool:
        return self._head(path) is not None

    def size(self, path: str) -> int:
        head = self._head(path)
        if head is None:
            raise ObjectMissing(f"{path} is missing in {self.description}")
        return int(head["ContentLength"])

    def walk(self, prefix: str) -> Iterator[str]:
        for path, _head in self._list(prefix, None):
            yield path

    def walk_grouped(self, prefix: str, delimiter: str) -> Iterator[tuple[str, bool]]:
        return self._list(prefix, delimiter)

    def _list(self, prefix: str, delimiter: str | None) -> Iterator[tuple[str, bool]]:
        """One paginated ListObjectsV2 below folder prefix (with a Delimiter: its CommonPrefixes
        as heads); link files the listing proves are remembered (module doc)."""
        folder = prefix.strip("/")
        list_prefix = self._key(folder) + "/" if folder else self._key_prefix()
        start = len(self.prefix)
        listed_revisions: dict[str, str] = {}
        with self._errors(f"the listing of {folder or '/'}"):
            for page in self._pages(list_prefix, delimiter):
                contents = page.get("Contents", ())
                if delimiter and any(delimiter in o["Key"][len(list_prefix):] for o in contents):
                    # the service ignored the delimiter (some S3-compatible ones know only "/")
                    raise GroupingUnsupported(f"{self.description} does not group listings by {delimiter!r}")
                for common in page.get("CommonPrefixes", ()):
                    yield common["Prefix"][start:], True
                for obj in contents:
                    # Keys ending in '/' are folder markers some S3 tools create; not files.
                    if obj["Key"].endswith("/"):
                        continue
                    rel = obj["Key"][start:]
                    if rel.endswith("/link"):
                        self._remember_link(rel, proven_link(rel, obj.get("Size", -1), obj.get("ETag", ""),
                                                             listed_revisions))
                    yield rel, False

    def _pages(self, list_prefix: str, delimiter: str | None) -> Iterator[dict]:
        """The pages of a ListObjectsV2 (1000 keys each), each asked on the signed keep-alive
        path first (boto3 only asks again after an unexpected answer, as for GETs). Raises
        ClientError (GroupingUnsupported when the service refuses the delimiter)."""
        token: str | None = None
        seen: set[str] = set()
        while True:
            try:
                page = self._list_page(list_prefix, delimiter, token)
            except ClientError as e:
                if delimiter and delimiter != "/" and error_code(e) in _GROUPING_REFUSED_CODES:
                    raise GroupingUnsupported(f"{self.description} refuses the delimiter {delimiter!r}: "
                                              f"{error_code(e)}") from None
                raise
            yield page
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken") or None
            if token is None or token in seen:
                raise StorageError(f"{self.description} answered the listing of {list_prefix!r} with a page "
                                   "that is truncated but gives no new continuation token")
            seen.add(token)

    def _list_page(self, list_prefix: str, delimiter: str | None, token: str | None) -> dict:
        """One page of a listing: signed GET, or boto3 after an unexpected answer."""
        params = {"list-type": "2", "prefix": list_prefix, "max-keys": "1000", "encoding-type": "url"}
        if delimiter:
            params["delimiter"] = delimiter
        if token:
            params["continuation-token"] = token
        self._key_prefix()   # refused once closed
        try:
            status, body = self._getter.list(params)
            if status == 200:
                return parse_listing(body)
        except (OSError, urllib3.exceptions.HTTPError, _BodyTooLarge, _Unparsable):
            pass
        extra = {"Delimiter": delimiter} if delimiter else {}
        if token:
            extra["ContinuationToken"] = token
        return self._client.list_objects_v2(Bucket=self.bucket, Prefix=list_prefix, MaxKeys=1000, **extra)

    def listdir(self, prefix: str) -> tuple[list[str], list[str]]:
        folder = prefix.strip("/")
        list_prefix = self._key(folder) + "/" if folder else self._key_prefix()
        dirs, files = [], []
        with self._errors(f"the listing of {folder or '/'}"):
            for page in self._pages(list_prefix, "/"):
                dirs += [p["Prefix"][len(list_prefix):-1] for p in page.get("CommonPrefixes", ())]
                files += [o["Key"][len(list_prefix):] for o in page.get("Contents", ())
                          if not o["Key"].endswith("/")]
        return sorted(d for d in dirs if d), sorted(files)

    def listed_objects(self, prefix: str, delimiter: str | None) -> Iterator[tuple[str, str | None]]:
        """The listing below folder prefix as (path, "ETag size") per object and (head, None) per
        CommonPrefix of delimiter: what a repository's fingerprint hashes (registry.fingerprint).
        GroupingUnsupported when the service does not group by delimiter."""
        folder = prefix.strip("/")
        list_prefix = self._key(folder) + "/"
        start = len(self.prefix)
        grouping = {"Delimiter": delimiter} if delimiter else {}
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=list_prefix, PaginationConfig={"PageSize": 1000}, **grouping)
        with self._errors(f"the listing of {folder}"):
            try:
                for page in pages:
                    contents = page.get("Contents", ())
                    if delimiter and any(delimiter in o["Key"][len(list_prefix):] for o in contents):
                        raise GroupingUnsupported(f"{self.description} does not group listings by {delimiter!r}")
                    for common in page.get("CommonPrefixes", ()):
                        yield common["Prefix"][start:], None
                    for obj in contents:
                        if not obj["Key"].endswith("/"):
                            yield obj["Key"][start:], f"{obj.get('ETag', '')} {obj.get('Size', -1)}"
            except ClientError as e:
                if delimiter and error_code(e) in _GROUPING_REFUSED_CODES:
                    raise GroupingUnsupported(f"{self.description} refuses the delimiter {delimiter!r}") from None
                raise

    def _remember_link(self, rel: str, content: str | None) -> None:
        if content is None:
            return
        with self._known_lock:
            self._known_links[rel] = content
            if len(self._known_links) > _KNOWN_LINKS_MAX:
                self._known_links.popitem(last=False)

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._getter.close()
            self._client.close()
