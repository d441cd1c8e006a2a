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


# --------------------------------------------------------------------------- every DSN shape
import pytest  # noqa: E402

from harbor_upgrade.secrets import dsn_shape_problem, forget_all, is_secret_key, mask_all  # noqa: E402

DSN_SHAPES = [
    # (dsn, the password as libpq or the operator means it, text of it that must never show)
    ("postgresql://harbor:s3cr%40t-pw@db.internal:5432/registry", "s3cr@t-pw", ["s3cr", "t-pw"]),
    ("postgresql://harbor:pa@ss-word@db.internal/registry", "pa@ss-word", ["ss-word"]),
    ("postgres://harbor:pw-one-two@h1:5432,h2:5433/registry?sslmode=require", "pw-one-two", ["pw-one"]),
    ("postgresql://harbor@db/registry?sslmode=disable&password=qu%20ery-pw", "qu ery-pw", ["qu%20ery", "ery-pw"]),
    (r"host=db user=harbor password='it\'s a secret' dbname=registry", "it's a secret", ["s a secret", "it\\'s"]),
    (r"host=db password = 'back\\slash-pw' dbname=registry", "back\\slash-pw", ["slash-pw"]),
    (r"host=db password=plain\ spaced-pw dbname=registry", "plain spaced-pw", ["spaced-pw", "plain"]),
    ("password=first-pw host=db", "first-pw", ["first-pw"]),
]


@pytest.mark.parametrize("dsn,password,fragments", DSN_SHAPES)
def test_the_whole_password_is_masked_in_every_dsn_shape(dsn, password, fragments):
    forget_all()
    masked = mask_dsn(dsn)
    assert MASK in masked
    for fragment in fragments:
        assert fragment not in masked
    register_dsn(dsn)
    text = f"FATAL: password authentication failed (password was {password}; {dsn})"
    shown = mask_all(text)
    for fragment in fragments + [password]:
        assert fragment not in shown


def test_a_url_password_with_an_unencoded_at_or_slash_is_refused_not_sent():
    # libpq ends the password at the first @ and sends the rest as a host name, into every message
    assert "%40" in dsn_shape_problem("postgresql://u:pa@ss@h/db")
    assert "%2F" in dsn_shape_problem("postgresql://u:pa/ss@h/db")
    assert dsn_shape_problem("postgresql://u:pa%40ss@h/db") is None
    assert dsn_shape_problem("host=h password=a@b/c") is None


def test_free_text_urls_and_password_settings_are_masked_even_when_unregistered():
    forget_all()
    text = ("see https://admin:hunter-22@registry.example/v2 and s3://key:sec/ret@bucket "
            "or password=unquoted-9 and password = 'quoted pw'")
    shown = mask_all(text)
    for secret in ("hunter-22", "sec/ret", "unquoted-9", "quoted pw"):
        assert secret not in shown
    assert "https://admin:********@registry.example/v2" in shown


@pytest.mark.parametrize("key", ["password", "harbor_admin_password", "accountkey", "accesskey", "secretkey",
                                 "accesskeysecret", "accesskeyid", "github_token", "client_secret", "private_key",
                                 "keyfile", "sentinel_password", "Access-Key", "credentials"])
def test_credential_keys(key):
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["hostname", "port", "bucket", "region", "rootdirectory", "data_volume",
                                 "max_open_conns", "registry_db_index", "absolute_url"])
def test_plain_keys(key):
    assert not is_secret_key(key)


# --------------------------------------------------------------------------- random passwords
from urllib.parse import quote  # noqa: E402

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PASSWORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=6, max_size=24).filter(
    lambda p: p.strip() == p and "harbor" not in p and "registry" not in p and "db.internal" not in p)


@settings(max_examples=100, deadline=None)
@given(password=PASSWORDS)
def test_no_password_survives_masking_in_any_dsn_shape(password):
    kv = password.replace("\\", "\\\\").replace("'", "\\'")
    shapes = [
        f"postgresql://harbor:{quote(password, safe='')}@db.internal:5432/registry",
        f"postgresql://harbor@db.internal/registry?sslmode=disable&password={quote(password, safe='')}",
        f"host=db.internal user=harbor password='{kv}' dbname=registry",
    ]
    for dsn in shapes:
        forget_all()
        shown = mask_dsn(dsn)
        assert password not in shown and quote(password, safe="") not in shown and kv not in shown, dsn
        register_dsn(dsn)
        assert password not in mask_all(f"error for {password}: {dsn}")
