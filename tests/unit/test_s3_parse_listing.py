"""The ListObjectsV2 answer parser of the signed listing path (registry.s3.parse_listing)."""
from __future__ import annotations

import pytest

from harbor_upgrade.registry.s3 import _Unparsable, parse_listing

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def answer(body: str, ns: str = NS) -> bytes:
    return f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult {ns}>{body}</ListBucketResult>'.encode()


def test_keys_sizes_etags_prefixes_and_the_next_token():
    page = parse_listing(answer(
        "<Name>b</Name><Prefix>r/</Prefix><IsTruncated>true</IsTruncated>"
        "<Contents><Key>r/a%20b+c/link</Key><LastModified>2021-01-01T00:00:00.000Z</LastModified>"
        "<ETag>&quot;0123&quot;</ETag><Size>71</Size><StorageClass>STANDARD</StorageClass></Contents>"
        "<CommonPrefixes><Prefix>r/t%2Fx/index/sha256/</Prefix></CommonPrefixes>"
        "<NextContinuationToken>tok+/=</NextContinuationToken><EncodingType>url</EncodingType>"))
    # decoded as boto3 decodes an answer it asked url-encoded ('+' is a space)
    assert page == {"Contents": [{"Key": "r/a b c/link", "ETag": '"0123"', "Size": 71}],
                    "CommonPrefixes": [{"Prefix": "r/t/x/index/sha256/"}],
                    "IsTruncated": True, "NextContinuationToken": "tok+/="}


def test_an_answer_without_encoding_or_namespace_is_taken_as_it_is():
    page = parse_listing(answer("<IsTruncated>false</IsTruncated><Contents><Key>a%20b</Key><Size>1</Size>"
                                "</Contents>", ns=""))
    assert page == {"Contents": [{"Key": "a%20b", "Size": 1}], "CommonPrefixes": [], "IsTruncated": False}


@pytest.mark.parametrize("body", [b"", b"not xml", b"<Error><Code>SlowDown</Code></Error>",
                                  answer("<Contents><Size>1</Size></Contents>"),
                                  answer("<Contents><Key>a</Key><Size>big</Size></Contents>")])
def test_anything_else_is_unparsable(body):
    with pytest.raises(_Unparsable):
        parse_listing(body)
