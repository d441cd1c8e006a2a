"""Object GETs on their signed keep-alive path: SeaweedFS, which checks every signature,
accepts them, and every answer they do not handle (403, a bucket gone, a server gone; the last two
injected with moto) ends as the same clear, secret-free error boto3's path gives."""
from __future__ import annotations

import json

import boto3
import pytest

from harbor_upgrade.registry.s3 import S3Storage
from harbor_upgrade.registry.storage import ObjectMissing, StorageError
from tests.support.s3 import moto_server

ROOT_KEY = "reg/docker/registry/v2/"
BLOB = "blobs/sha256/ab/" + "ab" * 32 + "/data"


@pytest.fixture(scope="module")
def signed(weed) -> str:
    client = weed.client()
    client.create_bucket(Bucket="signed")
    client.put_object(Bucket="signed", Key=ROOT_KEY + BLOB, Body=b"blob bytes")
    client.close()
    return "signed"


def test_signed_gets_are_accepted_by_a_server_that_checks_signatures(s3_server, signed):
    s = S3Storage(signed, "reg", endpoint_url=s3_server, retries=1)
    fallbacks = []
    s._client.meta.events.register("before-parameter-build.s3.GetObject", lambda **kw: fallbacks.append(kw))
    try:
        assert s.read(BLOB) == b"blob bytes"
        assert s.read_head(BLOB, 4) == b"blob"
        with pytest.raises(ObjectMissing):
            s.read("blobs/sha256/cd/" + "cd" * 32 + "/data")
    finally:
        s.close()
    assert fallbacks == [], "every answer came on the signed path"


def test_listings_are_signed_requests_of_their_own(s3_server, signed):
    """Listing pages come on the signed keep-alive path too (boto3 only after an unexpected answer)."""
    s = S3Storage(signed, "reg", endpoint_url=s3_server, retries=1)
    fallbacks = []
    s._client.meta.events.register("before-parameter-build.s3.ListObjectsV2", lambda **kw: fallbacks.append(kw))
    try:
        assert list(s.walk("blobs")) == [BLOB]
        assert list(s.walk_grouped("", "/data")) == [(BLOB, True)]
        assert s.listdir("blobs/sha256") == ([BLOB.split("/")[2]], [])
    finally:
        s.close()
    assert fallbacks == [], "every page came on the signed path"


def failed_read(storage: S3Storage) -> StorageError:
    """The error reading BLOB raises (it must raise one); the storage is closed after."""
    try:
        with pytest.raises(StorageError) as e:
            storage.read(BLOB)
    finally:
        storage.close()
    return e.value


def _policy(denied: list[str]) -> str:
    return json.dumps({"Version": "2012-10-17",
                       "Statement": [{"Effect": "Allow", "Action": ["s3:*"], "Resource": "*"},
                                     *([{"Effect": "Deny", "Action": denied, "Resource": "*"}] if denied else [])]})


@pytest.fixture(scope="module")
def lister():
    """A fault injected with moto: a user who may check and list the bucket but not GET an object
    (SeaweedFS lets no one check a bucket it may not read). moto checks SigV4 signatures and
    IAM policies after its first 5 actions. Yields (endpoint, access key, secret key)."""
    with moto_server({"INITIAL_NO_AUTH_ACTION_COUNT": "5"}) as endpoint:
        iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                           aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="lister")
        iam.put_user_policy(UserName="lister", PolicyName="p", PolicyDocument=_policy(["s3:GetObject"]))
        key = iam.create_access_key(UserName="lister")["AccessKey"]   # actions 1-3
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="setup", aws_secret_access_key="setup")
        s3.create_bucket(Bucket="signed")  # actions 4 and 5
        s3.put_object(Bucket="signed", Key=ROOT_KEY + BLOB, Body=b"blob bytes")
        yield endpoint, key["AccessKeyId"], key["SecretAccessKey"]


def test_a_denied_get_is_a_clear_error_without_the_secret(lister):
    endpoint, access, secret = lister
    error = failed_read(S3Storage("signed", "reg", endpoint_url=endpoint, access_key=access, secret_key=secret,
                                  retries=1))
    text = f"{error.message} {error.hint}"
    assert "access denied" in text and BLOB in text
    assert secret not in text


def test_a_bucket_deleted_meanwhile_is_not_a_missing_object(weed, s3_server):
    client = weed.client()
    client.create_bucket(Bucket="deleted-meanwhile")
    s = S3Storage("deleted-meanwhile", "reg", endpoint_url=s3_server, retries=1)
    client.delete_bucket(Bucket="deleted-meanwhile")
    error = failed_read(s)
    assert not isinstance(error, ObjectMissing)
    assert "does not exist" in error.message


def test_a_server_gone_meanwhile_is_a_clear_error_without_the_secret():
    """A fault injected with moto: a server that stops (SeaweedFS takes ~15 s to)."""
    secret = "gone/secret+key0123456789"
    with moto_server() as endpoint:
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="AKIAGONE",
                     aws_secret_access_key=secret).create_bucket(Bucket="gone")
        s = S3Storage("gone", "reg", endpoint_url=endpoint, access_key="AKIAGONE", secret_key=secret, retries=2)
    error = failed_read(s)
    text = f"{error.message} {error.hint}"
    assert "cannot reach S3" in text and BLOB in text
    assert secret not in text
