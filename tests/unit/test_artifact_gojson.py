"""Go encoding/json and time.Time compatibility: the text Harbor stores must match byte for byte."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harbor_upgrade.registry import manifest as m


@pytest.mark.parametrize("value,text", [
    (3.0, "3"), (1000.0, "1000"), (-0.0, "-0"), (0.5, "0.5"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
    (1.2345678901234568e+29, "1.2345678901234568e+29"), (1e-7, "1e-7"), (1e-6, "0.000001"),
    (2.0 ** 60, "1152921504606847000"), (12345678901234567890, "12345678901234567000"), (1.5e-10, "1.5e-10"),
])
def test_numbers_are_float64_as_go_writes_them(value, text):
    assert m.go_json(value) == text


def test_strings_escape_like_go():
    s = 'a"b\\c\n\r\t\x08\x0c\x01<>&\u2028\u2029é\x7f/'
    assert m.go_json(s) == '"a\\"b\\\\c\\n\\r\\t\\u0008\\u000c\\u0001\\u003c\\u003e\\u0026\\u2028\\u2029é\x7f/"'


def test_lone_surrogate_becomes_replacement_character():
    assert m.go_json(m.parse_document(b'"\\ud800x"')) == '"\ufffdx"'


def test_maps_sorted_structs_ordered_compact():
    value = {"b": [1, None, True], "a": m.GoStruct([("z", "1"), ("y", {})])}
    assert m.go_json(value) == '{"a":{"z":"1","y":{}},"b":[1,null,true]}'


@pytest.mark.parametrize("text,out", [
    ("2021-05-01T10:00:00.120000Z", "2021-05-01T10:00:00.12Z"),
    ("2021-08-09T10:11:12.500+02:00", "2021-08-09T10:11:12.5+02:00"),
    ("2021-01-01T00:00:00.123456789123Z", "2021-01-01T00:00:00.123456789Z"),
    ("2021-01-01T00:00:00+00:00", "2021-01-01T00:00:00Z"),
    ("2021-01-01T00:00:00,5Z", "2021-01-01T00:00:00.5Z"),
    ("2020-02-29T23:59:59.000Z", "2020-02-29T23:59:59Z"),
])
def test_times_reformatted_like_go(text, out):
    assert m.GoTime.parse(text, "config-invalid") == out


@pytest.mark.parametrize("text", ["2021-02-30T00:00:00Z", "2021-01-01T24:00:00Z", "2021-01-01T00:00:60Z",
                                  "2021-01-01t00:00:00Z", "2021-01-01T00:00:00z", "2021-01-01T00:00:00.Z",
                                  "2021-01-01T00:00:00", "2019-02-29T00:00:00Z", "21-01-01T00:00:00Z"])
def test_invalid_times_refused(text):
    with pytest.raises(m.Invalid) as e:
        m.GoTime.parse(text, "config-invalid")
    assert e.value.reason == "config-invalid"


def test_typed_decoding_is_case_insensitive_and_last_occurrence_wins():
    doc = m.parse_first_value(b'{"ARCHITECTURE":"arm","config":{"env":["A=1"],"LABELS":{"a":"b"}},'
                              b'"os":"x","OS":"linux"} trailing garbage')
    image = m.decode(doc, m.IMAGE, "config-invalid")
    assert image["architecture"] == "arm" and image["os"] == "linux"
    assert image["config"] == {"Env": ["A=1"], "Labels": {"a": "b"}}


def test_duplicate_member_keeps_document_order():
    doc = m.parse_document(b'{"os":"a","OS":"b","os":"c"}')
    assert m.decode(doc, m.IMAGE, "config-invalid")["os"] == "c"


@pytest.mark.parametrize("config", [
    b'{"config":{"Labels":{"a":1}}}', b'{"created":5}', b'{"history":[{"created":"yesterday"}]}',
    b'{"rootfs":{"diff_ids":[1]}}', b'[1]', b'{"architecture":true}',
])
def test_type_errors_fail_the_whole_config(config):
    with pytest.raises(m.Invalid):
        m.decode(m.parse_first_value(config), m.IMAGE, "config-invalid")


def test_null_members_are_absent():
    image = m.decode(m.parse_document(b'{"created":null,"config":{"Env":null,"Labels":{"a":null}}}'),
                     m.IMAGE, "config-invalid")
    assert "created" not in image and image["config"] == {"Labels": {"a": ""}}


@pytest.mark.parametrize("data", [b'{"a":1} x', b'', b'NaN', b'\xef\xbb\xbf{}'])
def test_manifest_must_be_exactly_one_json_value(data):
    with pytest.raises(m.Invalid):
        m.parse_document(data)


@pytest.mark.parametrize("doc,content_type", [
    ({"schemaVersion": 2, "mediaType": m.DOCKER_V2}, m.DOCKER_V2),
    ({"schemaVersion": 2}, m.OCI_MANIFEST),
    ({"schemaVersion": 2, "manifests": []}, m.OCI_INDEX),
    ({"schemaVersion": 2, "manifests": None}, m.OCI_MANIFEST),
    ({"schemaVersion": 1, "fsLayers": []}, m.SCHEMA1),
    ({"schemaVersion": 2, "mediaType": m.DOCKER_LIST, "manifests": []}, m.DOCKER_LIST),
])
def test_classify_as_the_registry_serves(doc, content_type):
    assert m.classify(doc) == content_type


@pytest.mark.parametrize("doc", [{"schemaVersion": "2"}, {"schemaVersion": 3}, [],
                                 {"schemaVersion": 2, "mediaType": "application/json"},
                                 {"schemaVersion": 2, "mediaType": m.DOCKER_LIST, "manifests": [{"platform": []}]},
                                 {"schemaVersion": 1, "fsLayers": {}}])
def test_classify_refuses_what_the_registry_cannot_serve(doc):
    with pytest.raises(m.Invalid):
        m.classify(doc)


@pytest.mark.parametrize("doc", [{"schemaVersion": 2, "layers": [{"size": 1.5}]},
                                 {"schemaVersion": 2, "config": {"size": "1"}},
                                 {"schemaVersion": 2, "annotations": {"a": 1}}])
def test_image_manifest_type_errors(doc):
    with pytest.raises(m.Invalid):
        m.decode(doc, m.OCI_IMAGE_MANIFEST, "manifest-invalid")


def test_platform_text_keeps_image_spec_order_and_drops_features():
    platform = {"variant": "v8", "os": "linux", "features": ["sse4"], "os.features": ["f"], "architecture": "arm64"}
    assert m.platform_text(platform) == '{"architecture":"arm64","os":"linux","os.features":["f"],"variant":"v8"}'
    assert m.platform_text({}) == '{"architecture":"","os":""}'
    assert m.platform_text(None) == ""


def test_schema1_served_length_of_a_compact_payload():
    compact = b'{"schemaVersion":1,"name":"a","tag":"b","architecture":"amd64","fsLayers":[],"history":[]}'
    # libtrust: payload up to the last member, then ',"signatures":[<one ES256 signature>]}'
    protected_json = '{"formatLength":89,"formatTail":"fQ","time":"2006-01-02T15:04:05Z"}'
    protected = -(-len(protected_json) * 4 // 3)  # base64url without padding
    signature = (len('{"header":{"jwk":{"crv":"P-256","kid":"","kty":"EC","x":"","y":""},"alg":"ES256"},'
                     '"signature":"","protected":""}') + 59 + 43 + 43 + 86 + protected)
    assert m.schema1_served_length(compact) == 89 + len(',"signatures":[') + signature + len("]}")


def test_schema1_payload_must_end_with_a_brace():
    with pytest.raises(m.Invalid):
        m.schema1_served_length(b'{"a":1} x')


_values = st.recursive(st.none() | st.text(), lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@given(_values)
def test_fast_ordered_encoder_matches_the_exact_one(value):
    assert m.go_json_ordered(value) == m.go_json(value, ordered=True)
