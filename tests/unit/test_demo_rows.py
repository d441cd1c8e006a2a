"""The demo's sample rows come from data/demo-rows.json: the file loads into the rows the demo
inserts, every row fits its table of the 1.10 schema, and what refers to another row finds it."""
from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import datetime
from importlib import resources

import pytest

from harbor_upgrade import demo

# sha256 of repr() of the rows of the tables in the data file, with TZ=UTC: the rows the demo
# inserted when they were written as code (sample_rows at 841f0f4), which the file replaced one
# for one. (The tables built from the images are left out: their digests and sizes are those of
# gzip'd layers, which another zlib may compress differently.)
FILE_ROWS_AT_841F0F4 = "27979dec49d2ec1a840338c2120946dac7f4b3bb6519b9e73db37c3c69f50e55"


@pytest.fixture
def rows(tmp_path, monkeypatch):
    """The sample rows for images pushed to a fresh storage, in UTC (layer mtimes and the
    robot's expiry are local times)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        yield demo.sample_rows(demo.write_storage(tmp_path))
    finally:
        monkeypatch.undo()
        time.tzset()


def sample_file() -> dict:
    return json.loads((resources.files("harbor_upgrade") / "data" / demo.SAMPLE_ROWS).read_text(encoding="utf-8"))


def schema_columns() -> dict[str, set[str]]:
    sql = (resources.files("harbor_upgrade") / "data" / "harbor-1.10.0-fresh.sql").read_text(encoding="utf-8")
    return {m["table"]: set(re.findall(r"^    (\w+) ", m["body"], re.M))
            for m in re.finditer(r"CREATE TABLE public\.(?P<table>\w+) \((?P<body>.*?)\n\);", sql, re.S)}


def test_the_data_file_loads_into_the_rows_the_demo_inserted_when_they_were_code(rows):
    in_file = {t["table"] for t in sample_file()["tables"] if "table" in t}
    assert len(in_file) == 20
    assert hashlib.sha256(repr([r for r in rows if r[0] in in_file]).encode()).hexdigest() == FILE_ROWS_AT_841F0F4


def test_every_row_fits_its_table_of_the_1_10_schema(rows):
    tables = schema_columns()
    assert len(tables) > 30
    for table, columns, values in rows:
        name = table.removeprefix("update:")
        assert set(columns) <= tables[name], (table, set(columns) - tables[name])
        assert values and all(len(r) == len(columns) for r in values), table


def test_rows_refer_to_rows_that_exist(rows):
    by_table = {t: [dict(zip(c, r, strict=True)) for r in v] for t, c, v in rows}
    users = {u["user_id"] for u in by_table["harbor_user"]} | {1}        # 1: admin, from Harbor's initial rows
    projects = {p["project_id"] for p in by_table["project"]} | {1}      # 1: library
    assert {m["entity_id"] for m in by_table["project_member"]} <= users
    assert {m["project_id"] for m in by_table["project_member"]} <= projects
    assert {p["owner_id"] for p in by_table["project"]} <= users
    assert {r["label_id"] for r in by_table["harbor_resource_label"]} == {x["id"] for x in by_table["harbor_label"]}
    scanners = {s["uuid"] for s in by_table["scanner_registration"]}
    assert scanners == {demo.CLAIR_UUID}
    assert {r["registration_uuid"] for r in by_table["scan_report"]} <= scanners
    digests = {b["digest"] for b in by_table["blob"]}
    assert {a["digest"] for a in by_table["artifact"]} <= digests
    assert {d for _p, (_t, d), _c in [tuple(r) for r in next(v for t, _c, v in rows if t == "project_blob")]} <= digests


def test_values_of_the_file_are_decoded():
    assert demo.sample_value({"day": 52, "minutes": 1}) == datetime(2020, 2, 27, 9, 1)
    assert demo.sample_value({"day": 0}) == demo.EPOCH
    assert demo.sample_value({"day": 90, "unix": True}) == int(datetime(2020, 4, 5, 9, 0).timestamp())
    assert demo.sample_value({"json": {"a": [1, "x"]}}) == '{"a":[1,"x"]}'
    assert [demo.sample_value(v) for v in (3, "s", None, False)] == [3, "s", None, False]


def test_every_table_of_the_file_is_known_and_inserted_once():
    doc = sample_file()
    names = [t.get("table") or t["from"] for t in doc["tables"]]
    assert len(names) == len(set(names))
    assert {t["from"] for t in doc["tables"] if "from" in t} == set(demo.DERIVED)
