import json

from harbor_upgrade.report import to_json
from harbor_upgrade.secrets import MASK, mask_data, mask_dsn, mask_text, register, register_dsn


def test_dsn_password_is_masked_and_registered():
    dsn = "postgresql://harbor:s3cr%40t-pw@db.internal:5432/registry"
    assert "s3cr" not in mask_dsn(dsn) and MASK in mask_dsn(dsn)
    register_dsn(dsn)
    assert "s3cr@t-pw" not in mask_text("connect failed for s3cr@t-pw")
    assert mask_dsn("host=db password='a b' dbname=registry") == f"host=db password={MASK} dbname=registry"


def test_secret_equal_to_json_syntax_keeps_the_json_valid():
    # a password that happens to be 'false' or a version string must not break the report
    register("false")
    register("2.0.0")
    report = {"ok": False, "hops": ["1.10.0", "2.0.0"], "note": "pw is false"}
    out = json.loads(to_json(report))
    assert out["ok"] is False
    assert out["hops"] == ["1.10.0", MASK]
    assert out["note"] == f"pw is {MASK}"


def test_values_under_secret_keys_are_masked_even_when_unregistered():
    data = {"database": {"password": "never-registered-1", "max_open_conns": 100},
            "s3": {"secretkey": "abc/def", "bucket": "b"}, "empty_password": ""}
    out = mask_data(data)
    assert out == {"database": {"password": MASK, "max_open_conns": 100},
                   "s3": {"secretkey": MASK, "bucket": "b"}, "empty_password": ""}
