"""The project's copies of ../shared/tools (tests/support/seed_harbor.py, db_normalize.py) equal
their originals except for the local changes their provenance paragraphs declare, listed here
one by one: an upstream change, or an undeclared local one, fails with the diff."""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import pytest

SUPPORT = Path(__file__).resolve().parents[1] / "support"

SEED_DUMP_USAGE = """\
  seed_harbor.py --seed 1 --scale 1 --dump harbor-1.10.0.sql
        build a throwaway PostgreSQL cluster, apply the upstream 0001..0015 files
        as golang-migrate does (needs $HARBOR_UPSTREAM_GIT), load the data and
        pg_dump the whole `registry` database (plain SQL, no owner/privileges).
"""
SEED_LOAD_USAGE = """\
  Load it into src/harbor_upgrade/data/harbor-1.10.0-fresh.sql (a fresh 1.10 schema with the rows
  Harbor's own files insert) to get a Harbor 1.10 database of any size.
"""
SEED_BUILD_DATABASE = '''\
def build_database(pg, seed=1, scale=1.0, profile="normal", inventory="auto", db="registry",
                   log=None):
    """Create `db` in cluster pg, apply upstream 0001..0015 and load the seed."""
    import upstream_migrations as um
    pg.createdb(db)
    um.apply(pg, 15, db=db, log=log)
    data = generate(seed, scale, profile, inventory)
    pg.psql(data, db=db, tuples=False)
    return data


'''
SEED_DUMP_RUN = """\
    if a.dump:
        sys.path.insert(0, HERE)
        import pgcluster
        with pgcluster.PgCluster() as pg:
            build_database(pg, a.seed, a.scale, a.profile, a.inventory)
            pg.dump(a.dump)
"""
CLUSTER_PSQL = '''\


class ClusterPsql:
    """A LocalCluster seen through the psql call this module makes, printed as ``psql -A -t``
    prints it (columns joined by '|', NULL empty, one line a row), from a short psycopg
    connection in UTC as the cluster's psql has it: a psql process per query made each
    comparison start about a hundred processes."""

    def __init__(self, cluster):
        self.cluster = cluster

    def psql(self, sql, db="registry", as_command=True):
        import psycopg
        with psycopg.connect(self.cluster.dsn(db), autocommit=True, client_encoding="UTF8",
                             options="-c TimeZone=UTC") as conn:
            res = conn.execute(sql).pgresult
            if res is None or not res.ntuples:
                return ""
            return "".join("|".join((res.get_value(r, c) or b"").decode() for c in range(res.nfields)) + "\\n"
                           for r in range(res.ntuples))
'''

#: (upstream text, local text): each upstream text occurs exactly once in the original
LOCAL_CHANGES = {
    "seed_harbor": [
        (SEED_DUMP_USAGE, SEED_LOAD_USAGE),
        ("                     repo_tag=e[4], guid=guid, operation=e[5],\n",
         "                     # access_log.repo_tag is varchar(128) in 1.10; edge tags are longer\n"
         "                     repo_tag=e[4][:128] if e[4] else e[4], guid=guid, operation=e[5],\n"),
        (SEED_BUILD_DATABASE, ""),
        ('    ap.add_argument("--dump", help="build a v1.10 DB in a throwaway cluster and pg_dump it here")\n', ""),
        ("    if not a.out and not a.dump:\n", "    if not a.out:\n"),
        (SEED_DUMP_RUN, ""),
    ],
    "db_normalize": [
        ('RENAMED = {"cve_allowlist": "cve_whitelist"}\n',
         'RENAMED = {"cve_allowlist": "cve_whitelist"}\n' + CLUSTER_PSQL),
    ],
}


def without_provenance(text: str) -> str:
    """The copy minus its provenance paragraph (from "Provenance:" to the next blank line)."""
    return re.sub(r"Provenance:.*?\n\n", "", text, count=1, flags=re.S)


def patched(original: str, changes: list[tuple[str, str]]) -> str:
    for old, new in changes:
        assert original.count(old) == 1, f"a declared local change no longer applies upstream:\n{old}"
        original = original.replace(old, new)
    return original


@pytest.mark.parametrize("name", sorted(LOCAL_CHANGES))
def test_the_copy_is_the_original_plus_its_declared_changes(shared, name):
    original = (shared / "tools" / f"{name}.py").read_text()
    copy = (SUPPORT / f"{name}.py").read_text()
    assert "Provenance:" in copy
    want = patched(original, LOCAL_CHANGES[name])
    got = without_provenance(copy)
    diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                        f"../shared/tools/{name}.py + declared changes", f"tests/support/{name}.py"))
    assert got == want, f"tests/support/{name}.py drifted from ../shared/tools/{name}.py:\n{diff}"

