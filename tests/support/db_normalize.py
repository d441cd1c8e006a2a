"""Normalized, comparable descriptions of a Harbor `registry` database.

ONE module used both to generate the hidden oracle and to check a candidate, so
the two sides are always normalized the same way.  Stdlib only; talks to the
server through psql (pgcluster.PgServer / PgCluster).

Provenance: a copy of ../shared/tools/db_normalize.py (the module that normalized the
oracle), kept here so that the upgrade tests and bench/chaos.py compare two databases the
way the oracle was made, without ../shared. tests/unit/test_vendored_tools.py compares it
with the original when ../shared is present. Local changes, and why:
  - ``ClusterPsql``: the module talks to the server through
    ``pg.psql(sql, db=..., as_command=True)`` (../shared's pgcluster); this adapts a
    LocalCluster to that call, over psycopg rather than a psql process per query.
  - this provenance paragraph.

schema(pg)  -> dict   tables/columns (type, nullability, default, identity),
                      constraints (kind, columns, FK target + actions, check
                      expression), indexes (definition), sequences (owner, type,
                      increment/min/max/cycle), functions, triggers, views.
data(pg, source_ids, window) -> dict   every table's rows, sorted, with values
                      normalized as described below.
compare_schema(a, b) / compare_data(a, b) -> list of difference strings.

What is deliberately NOT compared (and why)
 * Names of constraints and indexes that follow PostgreSQL's automatic naming
   (<table>_<cols>_pkey/_key/_fkey/_check/_excl/_idx, optionally followed by a
   digit).  PG derives them from table/column names, so an implementation that
   builds a table with a different statement order may get another automatic
   name; Harbor never uses them.  Explicit names (unique_artifact, idx_status,
   unique_schedule, fk_report_uuid, ...) are compared; task_execution_id_idx,
   although named by upstream, matches the automatic pattern and is ignored.  --strict-names compares all names.
 * Sequence NAMES are compared (later upstream releases run
   `ALTER SEQUENCE vulnerability_record_id_seq ...`, read audit_log_id_seq, etc.),
   sequence CURRENT VALUES are not: instead every sequence that is "ahead" of
   max(column) in the oracle (next nextval() cannot collide) must be ahead in the
   candidate too.
 * Column order inside a table (Harbor addresses columns by name) unless
   strict_order=True.
 * A column default `nextval('<seq>'::regclass)` whose sequence is owned by that
   column is written `nextval(<owned sequence>)`; the sequence name itself is
   compared in the sequence section.
 * Function bodies and view definitions are compared with whitespace collapsed.
 * Timestamps (timestamp/timestamptz/date) that fall inside the migration window
   (the server clock just before and after the candidate ran, +-2 s) are replaced
   by "<migration-time>": upstream stamps rows created/altered by the migration
   with now() (e.g. blob.update_time, execution.start_time, data_migrations.*).
 * Surrogate ids that did not exist before the migration ("minted" ids, e.g.
   tag.id, audit_log.id, execution.id, task.id, repository ids created by 2.0.3,
   schedule ids created by 2.2.0): upstream assigns them in an order nobody
   specifies (hash joins, loops over heap order).  A row of a table whose
   primary key is a single sequence-fed (serial) column and whose id was not
   present in the same table before the migration (cve_allowlist is matched
   with cve_whitelist) gets the id "#new:<hash of its content>", and every column that
   references it (foreign keys from the catalog plus the soft references listed
   in SOFT_REFS) gets the same token.  Ids that existed before must be kept.
 * The DATE part of the timestamps in MIGRATION_DATE_COLS when it is the date of the
   migration window (upstream 0080, Harbor 2.5, turns retention_policy's `time`
   columns into timestamps with `current_date + time`): "<migration-date>T<time>".
 * json/jsonb values and the text columns in TEXT_JSON (JSON stored as text by
   the migration) are compared as parsed JSON (key order and whitespace ignored).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re

MIGRATION_TIME = "<migration-time>"
MIGRATION_DATE = "<migration-date>"
# timestamp columns that a migration fills with current_date + a stored time of day
MIGRATION_DATE_COLS = {("retention_policy", "create_time"), ("retention_policy", "update_time")}
GENERATED_NAME = re.compile(r"_(pkey|key|fkey|check|excl|idx)\d*$")

# (table, column, target table, (discriminator column, value) or None)
SOFT_REFS = [
    ("artifact", "repository_id", "repository", None),
    ("tag", "repository_id", "repository", None),
    ("harbor_resource_label", "resource_id", "repository", ("resource_type", "r")),
    ("harbor_resource_label", "resource_id", "project", ("resource_type", "p")),
    ("execution", "vendor_id", "schedule", ("vendor_type", "SCHEDULER")),
    ("execution", "vendor_id", "replication_policy", ("vendor_type", "REPLICATION")),
    ("execution", "vendor_id", "retention_policy", ("vendor_type", "RETENTION")),
    ("execution", "vendor_id", "p2p_preheat_policy", ("vendor_type", "P2P_PREHEAT")),
    ("schedule", "vendor_id", "replication_policy", ("vendor_type", "REPLICATION")),
    ("schedule", "vendor_id", "retention_policy", ("vendor_type", "RETENTION")),
    ("schedule", "vendor_id", "p2p_preheat_policy", ("vendor_type", "P2P_PREHEAT")),
]
# text columns that the migrations fill with JSON; compared as parsed JSON
TEXT_JSON = {("schedule", "callback_func_param"), ("notification_policy", "event_types"),
             ("artifact", "extra_attrs")}
# table renamed by the migrations: new name -> name before
RENAMED = {"cve_allowlist": "cve_whitelist"}


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
            return "".join("|".join((res.get_value(r, c) or b"").decode() for c in range(res.nfields)) + "\n"
                           for r in range(res.ntuples))


def _q(pg, sql, db):
    return pg.psql(sql, db=db, as_command=True)


def _json_rows(pg, sql, db):
    out = _q(pg, f"SELECT coalesce(json_agg(x), '[]'::json) FROM ({sql}) x", db)
    return json.loads(out)


def _ws(s):
    return re.sub(r"\s+", " ", s or "").strip()


# ---------------------------------------------------------------------------
# schema
# ---------------------------------------------------------------------------
def schema(pg, db="registry"):
    cols = _json_rows(pg, """
      SELECT c.relname AS tbl, a.attname AS col, a.attnum AS num,
             format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
             pg_get_expr(d.adbin, d.adrelid) AS def, a.attidentity AS ident,
             a.attgenerated AS gen,
             CASE WHEN a.attcollation <> t.typcollation THEN co.collname END AS coll,
             pg_get_serial_sequence(quote_ident(c.relname), a.attname) AS owned_seq
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      JOIN pg_type t ON t.oid = a.atttypid
      LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
      LEFT JOIN pg_collation co ON co.oid = a.attcollation
      WHERE c.relkind IN ('r', 'p')""", db)
    tables = {}
    for r in sorted(cols, key=lambda r: (r["tbl"], r["num"])):
        t = tables.setdefault(r["tbl"], {"columns": {}, "column_order": []})
        default = r["def"]
        if default and r["owned_seq"]:
            seq = r["owned_seq"].split(".", 1)[-1].strip('"')
            default = re.sub(r"nextval\('(public\.)?\"?%s\"?'::regclass\)" % re.escape(seq),
                             "nextval(<owned sequence>)", default)
        t["columns"][r["col"]] = {"type": r["type"], "not_null": r["not_null"], "default": default,
                                  "identity": r["ident"] or None, "generated": r["gen"] or None,
                                  "collation": r["coll"]}
        t["column_order"].append(r["col"])

    cons = _json_rows(pg, """
      SELECT c.relname AS tbl, k.conname AS name, k.contype AS type,
             (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.conkey) WITH ORDINALITY u(n, ord)
                JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n) AS cols,
             fc.relname AS ref_table,
             (SELECT json_agg(a.attname ORDER BY u.ord) FROM unnest(k.confkey) WITH ORDINALITY u(n, ord)
                JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n) AS ref_cols,
             k.confupdtype AS on_update, k.confdeltype AS on_delete, k.confmatchtype AS match,
             k.condeferrable AS deferrable, k.condeferred AS deferred,
             CASE WHEN k.contype IN ('c', 'x') THEN pg_get_constraintdef(k.oid) END AS expr
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_class fc ON fc.oid = k.confrelid""", db)
    constraints = {}
    for r in cons:
        item = {"type": r["type"], "columns": r["cols"], "name": r["name"]}
        if r["type"] == "f":
            item.update({"ref_table": r["ref_table"], "ref_columns": r["ref_cols"],
                         "on_update": r["on_update"], "on_delete": r["on_delete"],
                         "match": r["match"]})
        if r["deferrable"]:
            item.update({"deferrable": True, "deferred": r["deferred"]})
        if r["expr"]:
            item["expr"] = _ws(r["expr"])
        constraints.setdefault(r["tbl"], []).append(item)
    for v in constraints.values():
        v.sort(key=lambda i: json.dumps(i, sort_keys=True))

    idx = _json_rows(pg, """
      SELECT t.relname AS tbl, i.relname AS name, pg_get_indexdef(x.indexrelid) AS def,
             x.indisunique AS uniq, x.indisprimary AS prim,
             (SELECT conname FROM pg_constraint k WHERE k.conindid = x.indexrelid
                AND k.conrelid = x.indrelid LIMIT 1) AS con
      FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
      JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = 'public'""", db)
    indexes = {}
    for r in idx:
        d = r["def"].replace(f'INDEX {r["name"]} ON', "INDEX <name> ON", 1)
        d = d.replace(f'INDEX "{r["name"]}" ON', "INDEX <name> ON", 1)
        indexes.setdefault(r["tbl"], []).append(
            {"def": d, "name": r["name"], "backs_constraint": r["con"] is not None})
    for v in indexes.values():
        v.sort(key=lambda i: json.dumps(i, sort_keys=True))

    seqs = _json_rows(pg, """
      SELECT s.relname AS name, format_type(q.seqtypid, NULL) AS type, q.seqstart AS start,
             q.seqincrement AS inc, q.seqmin AS min, q.seqmax AS max, q.seqcycle AS cycle,
             (SELECT tc.relname || '.' || a.attname FROM pg_depend d
                JOIN pg_class tc ON tc.oid = d.refobjid
                JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
              WHERE d.objid = s.oid AND d.classid = 'pg_class'::regclass
                AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') LIMIT 1) AS owner
      FROM pg_class s JOIN pg_sequence q ON q.seqrelid = s.oid
      JOIN pg_namespace n ON n.oid = s.relnamespace AND n.nspname = 'public'""", db)
    sequences = {}
    for r in seqs:
        key = r["owner"] or ("unowned:" + r["name"])
        sequences[key] = {"name": r["name"], "type": r["type"], "start": r["start"],
                          "increment": r["inc"], "min": r["min"], "max": r["max"],
                          "cycle": r["cycle"]}

    funcs = _json_rows(pg, """
      SELECT p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')' AS sig,
             pg_get_function_result(p.oid) AS ret, l.lanname AS lang, p.prosrc AS src
      FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace AND n.nspname = 'public'
      JOIN pg_language l ON l.oid = p.prolang""", db)
    functions = {r["sig"]: {"returns": r["ret"], "language": r["lang"], "body": _ws(r["src"])}
                 for r in funcs}

    trg = _json_rows(pg, """
      SELECT c.relname AS tbl, t.tgname AS name, pg_get_triggerdef(t.oid) AS def,
             t.tgenabled AS enabled
      FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      WHERE NOT t.tgisinternal""", db)
    triggers = {}
    for r in trg:
        triggers.setdefault(r["tbl"], []).append({"name": r["name"], "def": _ws(r["def"]),
                                                   "enabled": r["enabled"]})
    for v in triggers.values():
        v.sort(key=lambda i: i["name"])

    views = {r["name"]: _ws(r["def"]) for r in _json_rows(pg, """
      SELECT c.relname AS name, pg_get_viewdef(c.oid, true) AS def FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      WHERE c.relkind IN ('v', 'm')""", db)}
    ext = sorted(r["extname"] for r in _json_rows(
        pg, "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql'", db))
    return {"tables": tables, "constraints": constraints, "indexes": indexes,
            "sequences": sequences, "functions": functions, "triggers": triggers,
            "views": views, "extensions": ext}


def _named(item, strict):
    n = item.get("name")
    if n is None:
        return item
    out = dict(item)
    if not strict and GENERATED_NAME.search(n):
        out.pop("name")
    out.pop("backs_constraint", None)
    return out


def compare_schema(oracle, cand, strict_names=False, strict_order=False):
    diffs = []
    ot, ct = oracle["tables"], cand["tables"]
    for t in sorted(set(ot) - set(ct)):
        diffs.append(f"table {t}: missing")
    for t in sorted(set(ct) - set(ot)):
        diffs.append(f"table {t}: unexpected")
    for t in sorted(set(ot) & set(ct)):
        oc, cc = ot[t]["columns"], ct[t]["columns"]
        for c in sorted(set(oc) - set(cc)):
            diffs.append(f"table {t}: column {c} missing")
        for c in sorted(set(cc) - set(oc)):
            diffs.append(f"table {t}: unexpected column {c} {cc[c]['type']}")
        for c in sorted(set(oc) & set(cc)):
            for k in oc[c]:
                if oc[c].get(k) != cc[c].get(k):
                    diffs.append(f"table {t}: column {c} {k}: expected {oc[c].get(k)!r}, "
                                 f"got {cc[c].get(k)!r}")
        if strict_order and ot[t]["column_order"] != ct[t]["column_order"]:
            diffs.append(f"table {t}: column order {ct[t]['column_order']} != "
                         f"{ot[t]['column_order']}")
    for section in ("constraints", "indexes", "triggers"):
        for t in sorted(set(oracle[section]) | set(cand[section])):
            if t not in ot or t not in ct:
                continue
            exp = [json.dumps(_named(i, strict_names or section == "triggers"), sort_keys=True,
                              ensure_ascii=False) for i in oracle[section].get(t, [])]
            got = [json.dumps(_named(i, strict_names or section == "triggers"), sort_keys=True,
                              ensure_ascii=False) for i in cand[section].get(t, [])]
            what = {"constraints": "constraint", "indexes": "index", "triggers": "trigger"}[section]
            for x in _multiset_minus(exp, got):
                diffs.append(f"table {t}: {what} missing: {x}")
            for x in _multiset_minus(got, exp):
                diffs.append(f"table {t}: unexpected {what}: {x}")
    os_, cs = oracle["sequences"], cand["sequences"]
    for k in sorted(set(os_) | set(cs)):
        if os_.get(k) != cs.get(k):
            diffs.append(f"sequence {k}: expected {os_.get(k)}, got {cs.get(k)}")
    for sec in ("functions", "views"):
        for k in sorted(set(oracle[sec]) | set(cand[sec])):
            if oracle[sec].get(k) != cand[sec].get(k):
                diffs.append(f"{sec[:-1]} {k}: expected {oracle[sec].get(k)}, got {cand[sec].get(k)}")
    if oracle.get("extensions") != cand.get("extensions"):
        diffs.append(f"extensions: expected {oracle.get('extensions')}, got {cand.get('extensions')}")
    return diffs


def _multiset_minus(a, b):
    from collections import Counter
    ca, cb = Counter(a), Counter(b)
    out = []
    for k in sorted(ca):
        out += [k] * max(0, ca[k] - cb.get(k, 0))
    return out


# ---------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------
def table_info(pg, db="registry"):
    """{table: {"cols": {col: type}, "pk": col or None, "fks": [(col, ref_table)]}}"""
    cols = _json_rows(pg, """
      SELECT c.relname AS tbl, a.attname AS col, format_type(a.atttypid, a.atttypmod) AS type,
             pg_get_serial_sequence(quote_ident(c.relname), a.attname) IS NOT NULL AS serial
      FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE c.relkind IN ('r', 'p')""", db)
    info = {}
    serial = set()
    for r in cols:
        info.setdefault(r["tbl"], {"cols": {}, "pk": None, "fks": []})["cols"][r["col"]] = r["type"]
        if r["serial"]:
            serial.add((r["tbl"], r["col"]))
    keys = _json_rows(pg, """
      SELECT c.relname AS tbl, k.contype AS type, fc.relname AS ref,
             (SELECT json_agg(a.attname) FROM unnest(k.conkey) u(n)
                JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.n) AS cols,
             (SELECT json_agg(a.attname) FROM unnest(k.confkey) u(n)
                JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.n) AS ref_cols
      FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
      JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
      LEFT JOIN pg_class fc ON fc.oid = k.confrelid
      WHERE k.contype IN ('p', 'f')""", db)
    for r in keys:
        ti = info.get(r["tbl"])
        if ti is None:
            continue
        # surrogate key = single-column primary key fed by a sequence (serial / identity)
        if r["type"] == "p" and len(r["cols"]) == 1 and (r["tbl"], r["cols"][0]) in serial:
            ti["pk"] = r["cols"][0]
        if r["type"] == "f" and len(r["cols"]) == 1:
            ti["fks"].append((r["cols"][0], r["ref"], r["ref_cols"][0]))
    return info


def source_ids(pg, db="registry"):
    """Ids present before the migration: {table: [ids]} for every table whose primary
    key is a single integer column.  Call on the restored input, before the candidate."""
    info = table_info(pg, db)
    out = {}
    for t, ti in sorted(info.items()):
        if ti["pk"]:
            ids = _q(pg, f'SELECT coalesce(json_agg("{ti["pk"]}"), \'[]\') FROM public."{t}"', db)
            out[t] = sorted(json.loads(ids))
    return out


def sequence_state(pg, db="registry"):
    """{"table.column": "ahead"|"behind"} for every sequence owned by a column."""
    rows = _json_rows(pg, """
      SELECT tc.relname AS tbl, a.attname AS col, s.relname AS seq
      FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace AND n.nspname = 'public'
      JOIN pg_depend d ON d.objid = s.oid AND d.classid = 'pg_class'::regclass
           AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
      JOIN pg_class tc ON tc.oid = d.refobjid
      JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
      WHERE s.relkind = 'S'""", db)
    if not rows:
        return {}
    parts = []
    for r in rows:
        parts.append(
            "SELECT '%s.%s' AS k, (SELECT CASE WHEN m IS NULL THEN true WHEN s.is_called "
            "THEN s.last_value >= m ELSE s.last_value > m END FROM (SELECT max(\"%s\") AS m "
            "FROM public.\"%s\") mm, public.\"%s\" s) AS ok"
            % (r["tbl"], r["col"], r["col"], r["tbl"], r["seq"]))
    res = _json_rows(pg, " UNION ALL ".join(parts), db)
    return {r["k"]: ("ahead" if r["ok"] else "behind") for r in res}


def _parse_ts(s):
    try:
        return dt.datetime.fromisoformat(s.replace("Z", ""))
    except ValueError:
        return None


def _canon_json(v):
    return json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _norm_value(table, col, typ, v, window):
    if v is None:
        return None
    if typ.startswith("timestamp") or typ == "date":
        if window and isinstance(v, str):
            t = _parse_ts(v)
            if t is not None and t.tzinfo is not None:
                t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
            if (t is not None and (table, col) in MIGRATION_DATE_COLS and typ.startswith("timestamp")
                    and t.date() in (window[0].date(), window[1].date()) and len(v) >= 10):
                return MIGRATION_DATE + v[10:]
            if t is not None and window[0] <= t <= window[1]:
                return MIGRATION_TIME
        return v
    if typ in ("json", "jsonb"):
        return "json:" + _canon_json(v)
    if (table, col) in TEXT_JSON and isinstance(v, str):
        try:
            return "json:" + _canon_json(json.loads(v))
        except ValueError:
            return v
    if typ == "double precision" or typ == "real" or typ.startswith("numeric"):
        return float(v)
    return v


def _row_key(row):
    return _canon_json(row)


def data(pg, db="registry", src_ids=None, window=None, tables=None):
    """Normalized rows of every table.  src_ids: output of source_ids() taken before the
    migration (None: keep all ids).  window: (start, end) datetimes (UTC, naive) of the
    migration."""
    info = table_info(pg, db)
    if window:
        window = (window[0] - dt.timedelta(seconds=2), window[1] + dt.timedelta(seconds=2))
    raw = {}
    for t in sorted(info):
        if tables and t not in tables:
            continue
        out = _q(pg, f'SELECT row_to_json(x)::text FROM public."{t}" x', db)
        rows = [json.loads(line) for line in out.splitlines() if line.strip()]
        cols = info[t]["cols"]
        raw[t] = [{c: _norm_value(t, c, cols[c], r.get(c), window) for c in cols} for r in rows]

    # --- minted id canonicalization -------------------------------------
    refs = {}      # table -> list of (col, target, cond)
    for t, ti in info.items():
        for col, ref, refcol in ti["fks"]:
            if info.get(ref, {}).get("pk") == refcol:
                refs.setdefault(t, []).append((col, ref, None))
    for t, col, target, cond in SOFT_REFS:
        if t in info and target in info and col in info[t]["cols"]:
            refs.setdefault(t, []).append((col, target, cond))
    idmap = {}     # table -> {old id: token}
    if src_ids is not None:
        done = set()
        pending = [t for t in raw if info[t]["pk"]]
        guard = 0
        while pending and guard < 100:
            guard += 1
            for t in list(pending):
                deps = [tg for (_, tg, _) in refs.get(t, []) if tg != t and tg in pending]
                if deps and guard < 50:
                    continue
                _rewrite_refs(t, raw[t], refs.get(t, []), idmap)
                pk = info[t]["pk"]
                before = set(src_ids.get(t, src_ids.get(RENAMED.get(t, ""), [])))
                m = {}
                for row in raw[t]:
                    if row[pk] not in before:
                        content = {k: v for k, v in row.items() if k != pk}
                        tok = "#new:" + hashlib.sha256(_row_key(content).encode()).hexdigest()[:20]
                        m[row[pk]] = tok
                        row[pk] = tok
                idmap[t] = m
                pending.remove(t)
                done.add(t)
        for t in raw:
            if not info[t]["pk"]:
                _rewrite_refs(t, raw[t], refs.get(t, []), idmap)
    result = {}
    for t, rows in raw.items():
        cols = sorted(info[t]["cols"])
        lst = [[r[c] for c in cols] for r in rows]
        lst.sort(key=_row_key)
        result[t] = {"columns": cols, "rows": lst}
    return {"tables": result, "sequences": sequence_state(pg, db)}


def _rewrite_refs(t, rows, rlist, idmap):
    for col, target, cond in rlist:
        m = idmap.get(target)
        if not m:
            continue
        for row in rows:
            if cond and row.get(cond[0]) != cond[1]:
                continue
            v = row.get(col)
            if v in m:
                row[col] = m[v]


def compare_data(oracle, cand, max_rows=8):
    """Returns (diff lines, {table: bool equal})."""
    diffs = []
    status = {}
    ot, ct = oracle["tables"], cand["tables"]
    for t in sorted(set(ot) | set(ct)):
        if t not in ct:
            diffs.append(f"data {t}: table missing")
            status[t] = False
            continue
        if t not in ot:
            diffs.append(f"data {t}: unexpected table")
            status[t] = False
            continue
        oc, cc = ot[t]["columns"], ct[t]["columns"]
        common = [c for c in oc if c in cc]
        if oc != cc:
            diffs.append(f"data {t}: columns differ (missing {sorted(set(oc) - set(cc))}, "
                         f"unexpected {sorted(set(cc) - set(oc))}); comparing common columns")
        oi = [oc.index(c) for c in common]
        ci = [cc.index(c) for c in common]
        orows = [_row_key([r[i] for i in oi]) for r in ot[t]["rows"]]
        crows = [_row_key([r[i] for i in ci]) for r in ct[t]["rows"]]
        missing = _multiset_minus(orows, crows)
        extra = _multiset_minus(crows, orows)
        ok = not missing and not extra and oc == cc
        status[t] = ok
        if missing or extra:
            diffs.append(f"data {t}: {len(ot[t]['rows'])} expected rows, {len(ct[t]['rows'])} got; "
                         f"{len(missing)} missing, {len(extra)} unexpected  (columns: {', '.join(common)})")
            for x in missing[:max_rows]:
                diffs.append(f"    - {x}")
            if len(missing) > max_rows:
                diffs.append(f"    - ... {len(missing) - max_rows} more")
            for x in extra[:max_rows]:
                diffs.append(f"    + {x}")
            if len(extra) > max_rows:
                diffs.append(f"    + ... {len(extra) - max_rows} more")
    os_, cs = oracle.get("sequences", {}), cand.get("sequences", {})
    for k, v in sorted(os_.items()):
        if v == "ahead" and cs.get(k) != "ahead":
            diffs.append(f"sequence of {k}: {cs.get(k, 'missing')} (its next value would collide "
                         f"with an existing row); upstream leaves it ahead of max()")
            status[k.split(".")[0]] = False
    return diffs, status


def dump_json(obj, path):
    """Deterministic JSON file (gzip when path ends with .gz)."""
    import gzip
    s = json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=None, separators=(",", ":"))
    if path.endswith(".gz"):
        with open(path, "wb") as f:
            with gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0) as g:
                g.write(s.encode())
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(s)
            f.write("\n")


def load_json(path):
    import gzip
    if path.endswith(".gz"):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return json.load(f)
    with open(path, encoding="utf-8") as f:
        return json.load(f)
