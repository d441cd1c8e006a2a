"""The scanner step: Clair out, Trivy in."""
from __future__ import annotations

import uuid

import psycopg

from ..context import Context

# What Harbor 2.4's core registers when installed --with-trivy.
TRIVY = {"name": "Trivy", "url": "http://trivy-adapter:8080", "description": "The Trivy scanner adapter"}


SCANNER_SQL_CLAIR = "SELECT id, uuid, is_default FROM scanner_registration WHERE immutable AND name = 'Clair'"


def step_scanner(ctx: Context) -> dict:
    """Clair out, Trivy in: what Harbor 2.4's core does at start when installed --with-trivy
    (register the immutable Trivy, make it the default when there is none), plus the
    removal of a Clair registration that 2.2's SQL kept (it keeps Clair when any of its
    columns is NULL) together with its reports."""
    changed = {"clair_removed": False, "clair_reports_removed": 0, "trivy_registered": False,
               "trivy_default": False}
    with psycopg.connect(ctx.dsn) as conn, conn.transaction():
        cur = conn.cursor()
        clair = cur.execute(SCANNER_SQL_CLAIR).fetchone()
        if clair:
            cur.execute("DELETE FROM scan_report WHERE registration_uuid = %s", (clair[1],))
            changed["clair_reports_removed"] = cur.rowcount
            cur.execute("DELETE FROM scanner_registration WHERE id = %s", (clair[0],))
            changed["clair_removed"] = True
        trivy = cur.execute("SELECT id FROM scanner_registration WHERE immutable AND name = %s",
                            (TRIVY["name"],)).fetchone()
        if not trivy:
            dbname = cur.execute("SELECT current_database()").fetchone()[0]
            # a uuid derived from the database: a repeated run registers the very same scanner
            reg_uuid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"harbor-upgrade:trivy:{dbname}"))
            trivy = cur.execute(
                "INSERT INTO scanner_registration (uuid, url, name, description, auth, access_cred, "
                "use_internal_addr, immutable) VALUES (%s, %s, %s, %s, '', '', true, true) RETURNING id",
                (reg_uuid, TRIVY["url"], TRIVY["name"], TRIVY["description"])).fetchone()
            changed["trivy_registered"] = True
        has_default = cur.execute("SELECT count(*) FROM scanner_registration WHERE is_default").fetchone()[0]
        if not has_default:
            cur.execute("UPDATE scanner_registration SET is_default = true WHERE id = %s", (trivy[0],))
            changed["trivy_default"] = True
        default = cur.execute("SELECT name FROM scanner_registration WHERE is_default").fetchone()[0]
    parts = [f"Clair removed with {changed['clair_reports_removed']} reports" if changed["clair_removed"]
             else "no Clair registration left"]
    parts.append("Trivy registered" if changed["trivy_registered"] else "Trivy already registered")
    parts.append(f"default scanner: {default}")
    return {"summary": "; ".join(parts), "changed": changed}
