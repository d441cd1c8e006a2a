"""The scanner step on a real upgraded database: a Clair registration that Harbor's SQL
kept (one of its columns NULL) goes, with its reports; Trivy is registered once and
becomes the default; repeating the step changes nothing."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import psycopg

from harbor_upgrade import db, demo
from harbor_upgrade import upgrade as up
from harbor_upgrade.verify import verify

CLAIR_UUID = "0c05b577-0000-4000-8000-0000000000c1"


def ctx(dsn: str) -> up.Context:
    return up.Context(up.Options("harbor.yml"), SimpleNamespace(dsn=dsn), None, Path("."), None)


def rows(dsn: str, sql: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(sql).fetchall()


def test_scanner_step_removes_clair_and_makes_trivy_the_default(database):
    database.load(demo.fresh_schema())
    database.psql(
        "INSERT INTO scanner_registration (uuid, url, name, description, auth, access_cred, is_default, "
        f"use_internal_addr, immutable) VALUES ('{CLAIR_UUID}', 'http://clair-adapter:8080', 'Clair', "
        "'The clair scanner adapter', '', NULL, true, true, true), "
        "('a8a2f955-0000-4000-8000-0000000000a1', 'https://anchore.example.com', 'Anchore', '', '', '', "
        "false, false, false)")
    db.migrate(database.dsn)
    # Harbor's 2.2 SQL keeps a Clair row with a NULL column (and its default flag)
    assert rows(database.dsn, "SELECT name, is_default FROM scanner_registration WHERE immutable") == [("Clair", True)]
    database.psql("INSERT INTO scan_report (uuid, digest, registration_uuid, mime_type) VALUES "
                  f"('r1', 'sha256:{'a' * 64}', '{CLAIR_UUID}', 'application/vnd.security.vulnerability.report; "
                  "version=1.1')")
    before = {c.name: c.status for c in verify(database.dsn).checks}
    assert before["default scanner"] == "warn"

    out = up.step_scanner(ctx(database.dsn))
    assert out.changed == {"clair_removed": True, "clair_reports_removed": 1, "trivy_registered": True,
                              "trivy_default": True}
    assert "Clair removed with 1 reports" in out.summary and "default scanner: Trivy" in out.summary
    after = rows(database.dsn, "SELECT uuid, name, url, immutable, is_default, use_internal_addr "
                               "FROM scanner_registration ORDER BY name")
    assert [r[1:] for r in after] == [("Anchore", "https://anchore.example.com", False, False, False),
                                      ("Trivy", "http://trivy-adapter:8080", True, True, True)]
    assert rows(database.dsn, "SELECT count(*) FROM scan_report") == [(0,)]
    assert {c.name: c.status for c in verify(database.dsn).checks}["default scanner"] == "pass"

    again = up.step_scanner(ctx(database.dsn))
    assert not any(again.changed.values())
    assert rows(database.dsn, "SELECT uuid, name, url, immutable, is_default, use_internal_addr "
                              "FROM scanner_registration ORDER BY name") == after
