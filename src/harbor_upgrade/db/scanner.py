"""Clair out, Trivy in: what Harbor 2.4's core does at start when installed --with-trivy
(register the immutable Trivy, make it the default when there is none), plus the removal
of a Clair registration that 2.2's SQL kept (it keeps Clair when any of its columns is
NULL) together with its reports. One transaction; repeating it changes nothing."""
from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass

from .connection import connect, one

# What Harbor 2.4's core registers when installed --with-trivy.
TRIVY = {"name": "Trivy", "url": "http://trivy-adapter:8080", "description": "The Trivy scanner adapter"}
CLAIR_SQL = "SELECT id, uuid, is_default FROM scanner_registration WHERE immutable AND name = 'Clair'"


@dataclass
class ScannerChange:
    clair_removed: bool = False
    clair_reports_removed: int = 0
    trivy_registered: bool = False
    trivy_default: bool = False
    default: str | None = None       # the default scanner's name afterwards

    def changed(self) -> dict:
        d = asdict(self)
        del d["default"]
        return d


def replace_clair_with_trivy(dsn: str) -> ScannerChange:
    out = ScannerChange()
    with connect(dsn) as conn, conn.transaction():
        cur = conn.cursor()
        clair = cur.execute(CLAIR_SQL).fetchone()
        if clair:
            cur.execute("DELETE FROM scan_report WHERE registration_uuid = %s", (clair[1],))
            out.clair_reports_removed = cur.rowcount
            cur.execute("DELETE FROM scanner_registration WHERE id = %s", (clair[0],))
            out.clair_removed = True
        trivy = cur.execute("SELECT id FROM scanner_registration WHERE immutable AND name = %s",
                            (TRIVY["name"],)).fetchone()
        if not trivy:
            dbname = one(cur.execute("SELECT current_database()"))[0]
            # a uuid derived from the database: a repeated run registers the very same scanner
            reg_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"harbor-upgrade:trivy:{dbname}"))
            trivy = one(cur.execute(
                "INSERT INTO scanner_registration (uuid, url, name, description, auth, access_cred, "
                "use_internal_addr, immutable) VALUES (%s, %s, %s, %s, '', '', true, true) RETURNING id",
                (reg_uuid, TRIVY["url"], TRIVY["name"], TRIVY["description"])))
            out.trivy_registered = True
        has_default = one(cur.execute("SELECT count(*) FROM scanner_registration WHERE is_default"))[0]
        if not has_default:
            cur.execute("UPDATE scanner_registration SET is_default = true WHERE id = %s", (trivy[0],))
            out.trivy_default = True
        out.default = one(cur.execute("SELECT name FROM scanner_registration WHERE is_default"))[0]
    return out
