"""Where a signed object GET goes: the bucket addressed exactly as the boto3 client does."""
from __future__ import annotations

from urllib.parse import quote

import boto3
import pytest
from botocore.config import Config

from harbor_upgrade.registry.s3 import is_no_such_key, object_url_base


@pytest.fixture(autouse=True)
def dummy_credentials(monkeypatch):
    # presigning needs credentials, and contacts nobody
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNITTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_aws_buckets_are_addressed_virtual_host_style_in_their_region():
    client = boto3.client("s3", region_name="eu-west-1")
    assert object_url_base(client, "harbor-registry") == ("https://harbor-registry.s3.eu-west-1.amazonaws.com/",
                                                         "eu-west-1")


def test_bucket_names_with_dots_are_addressed_path_style_over_https():
    client = boto3.client("s3", region_name="eu-west-1")
    assert object_url_base(client, "harbor.registry") == ("https://s3.eu-west-1.amazonaws.com/harbor.registry/",
                                                         "eu-west-1")


def test_custom_endpoints_are_addressed_path_style():
    client = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="eu-central-1",
                          config=Config(s3={"addressing_style": "path"}))
    assert object_url_base(client, "harbor-registry") == ("http://127.0.0.1:9000/harbor-registry/", "eu-central-1")


@pytest.mark.parametrize("key", ["harbor/registry/docker/registry/v2/blobs/sha256/ab/ab12/data",
                                 "root with space/docker/registry/v2/repositories/a+b/_uploads/x~y/link"])
def test_object_urls_quote_keys_as_boto3_does(key):
    client = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                          config=Config(s3={"addressing_style": "path"}))
    presigned = client.generate_presigned_url("get_object", Params={"Bucket": "b-1", "Key": key})
    assert object_url_base(client, "b-1")[0] + quote(key, safe="/~") == presigned.split("?")[0]


def test_only_no_such_key_means_a_missing_object():
    assert is_no_such_key(b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>x</Message></Error>")
    assert not is_no_such_key(b"<Error><Code>NoSuchBucket</Code></Error>")
    assert not is_no_such_key(b"")
