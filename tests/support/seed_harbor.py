#!/usr/bin/env python3
"""Deterministic generator of realistic Harbor v1.10 (schema version 15) data.

Provenance: a copy of ../shared/tools/seed_harbor.py (the generator the shared fixtures were
made with), kept here so that the db tests and bench/ build Harbor 1.10 databases without
../shared. tests/unit/test_vendored_tools.py compares it with the original when ../shared is
present. Local changes, and why:
  - gen_access_log cuts access_log.repo_tag to 128 characters: the column is varchar(128)
    in 1.10 and the `edge` profile makes longer tags, so upstream's output does not load
    into the project's fresh 1.10 schema; to be upstreamed.
  - no --dump / build_database: they need upstream's migration files and pgcluster.py, which
    stay in ../shared; the project loads the data into harbor-1.10.0-fresh.sql instead.
  - this docstring's provenance and usage notes.

Usage
  seed_harbor.py --seed 1 --scale 1 --out data.sql
        write the data part only (COPY blocks + sequence fixes).  Load it into a
        database whose schema is already at version 15 (upstream files 0001..0015
        applied, including the rows those files insert).
  Load it into src/harbor_upgrade/data/harbor-1.10.0-fresh.sql (a fresh 1.10 schema with the rows
  Harbor's own files insert) to get a Harbor 1.10 database of any size.

Options
  --profile normal|edge   `edge` adds edge cases: empty tables,
                          unicode and maximum-length names, NULLs wherever the
                          1.10 schema allows them and upstream survives them,
                          the same digest in many repositories, OCI manifests,
                          artifacts whose manifest blob row is missing, etc.
  --inventory PATH|auto|none
                          registry inventory JSON (see README of the registry
                          fixture): repositories/tags/digests/blobs are then taken
                          from it, so DB rows match a real storage tree.  `auto`
                          (default) uses ../fixtures/registry/inventory.json
                          relative to this file when it exists.

Everything is derived from random.Random(seed) and fixed dates, so the same
arguments always give byte-identical output.  Stdlib only.
"""
from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_INVENTORY = os.path.join(HERE, "..", "fixtures", "registry", "inventory.json")

MT_SCHEMA2 = "application/vnd.docker.distribution.manifest.v2+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MT_OCI = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
MT_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
MT_S1_LAYER = "application/vnd.docker.container.image.rootfs.diff+x-gtar"
REPORT_MIME = "application/vnd.scanner.adapter.vuln.report.harbor+json; version=1.0"

INSTALL_TIME = dt.datetime(2019, 3, 4, 9, 12, 33, 418000)   # "harbor 1.7 installed"
DATA_START = dt.datetime(2019, 3, 5, 0, 0, 0)
DATA_END = dt.datetime(2020, 6, 28, 0, 0, 0)                 # "last activity on 1.10"

FIRST = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
         "yuki", "zoe", "chen", "priya", "omar", "lena", "tomas", "ines", "kofi", "mei", "arjun"]
LAST = ["smith", "jones", "garcia", "müller", "rossi", "kim", "nguyen", "novak", "silva",
        "kowalski", "tanaka", "dubois", "okafor", "haddad", "larsen"]
PROJ_WORDS = ["platform", "payments", "ml", "data", "web", "mobile", "infra", "security",
              "ci", "qa", "search", "billing", "auth", "edge", "analytics", "mirror", "ops",
              "devtools", "frontend", "backend", "iot", "research", "release", "sandbox"]
APP_WORDS = ["api", "worker", "gateway", "frontend", "scheduler", "db-migrator", "cache",
             "nginx", "redis", "postgres", "alpine", "busybox", "python", "node", "golang",
             "builder", "exporter", "agent", "proxy", "ingest", "notifier", "indexer",
             "model-server", "trainer", "etl", "cron", "sidecar", "operator", "controller"]
PKGS = ["openssl", "zlib", "libc6", "busybox", "curl", "libxml2", "sqlite", "bash", "glibc",
        "musl", "libssl1.1", "ncurses", "expat", "pcre", "gnutls28", "apt", "tar", "perl"]
SEVERITIES = ["Negligible", "Unknown", "Low", "Medium", "High", "Critical"]


def ts(d: dt.datetime | None):
    return None if d is None else d


class Gen:
    def __init__(self, seed: int, scale: float, profile: str, inventory: dict | None):
        self.seed = seed
        self.scale = scale
        self.edge = profile == "edge"
        self.inv = inventory
        self.r = random.Random(seed * 7919 + 17)
        self.rows = {}      # table -> list of dict rows (explicit ids)
        self.cols = {}      # table -> column order
        self.updates = []   # SQL statements for rows pre-inserted by the upstream files
        self.empty = set()
        if self.edge:
            # tables left empty in the edge profile (the migrations must cope)
            self.empty = {"oidc_user", "immutable_tag_rule", "notification_job",
                          "replication_schedule_job", "job_log", "project_blob"}

    # -- helpers ----------------------------------------------------------
    def h(self, *parts) -> str:
        return hashlib.sha256(("%d|" % self.seed + "|".join(map(str, parts))).encode()).hexdigest()

    def digest(self, *parts) -> str:
        return "sha256:" + self.h(*parts)

    def uuid(self, *parts) -> str:
        x = self.h("uuid", *parts)
        return f"{x[:8]}-{x[8:12]}-4{x[13:16]}-a{x[17:20]}-{x[20:32]}"

    def when(self, lo: dt.datetime = DATA_START, hi: dt.datetime = DATA_END) -> dt.datetime:
        span = (hi - lo).total_seconds()
        if span <= 0:
            return lo
        s = self.r.random() * span
        return (lo + dt.timedelta(seconds=s)).replace(microsecond=self.r.randrange(0, 1000000))

    def after(self, t: dt.datetime, max_seconds=86400 * 30) -> dt.datetime:
        return min(DATA_END, t + dt.timedelta(seconds=self.r.randint(1, max_seconds),
                                              microseconds=self.r.randrange(0, 1000000)))

    def add(self, table, **row):
        self.rows.setdefault(table, []).append(row)
        if table not in self.cols:
            self.cols[table] = list(row.keys())
        return row

    def n(self, base, power=1.0, minimum=1):
        return max(minimum, int(round(base * (self.scale ** power))))

    def maybe_null(self, value, p=0.3):
        """In the edge profile, NULL a nullable value with probability p."""
        if self.edge and self.r.random() < p:
            return None
        return value

    # -- generation --------------------------------------------------------
    def build(self):
        self.gen_config()
        self.gen_users()
        self.gen_groups()
        self.gen_projects()
        self.gen_members()
        self.gen_labels()
        self.blobs = {}
        self.repos = []
        self.storage_projects = set()
        if self.inv:
            self.gen_images_from_inventory()
        self.gen_images()
        self.gen_orphans()
        self.gen_artifact_rows()
        self.gen_resource_labels()
        self.gen_access_log()
        self.gen_quota()
        self.gen_scanners_and_reports()
        self.gen_replication()
        self.gen_retention()
        self.gen_admin_jobs()
        self.gen_notifications()
        self.gen_robots()
        self.gen_cve_whitelists()
        self.gen_immutable_rules()
        self.gen_job_logs()
        for t in self.empty:
            self.rows[t] = []
        return self

    def gen_config(self):
        auth = "ldap_auth" if self.edge else "oidc_auth"
        self.auth_mode = auth
        props = {
            "auth_mode": auth,
            "project_creation_restriction": "adminonly" if self.edge else "everyone",
            "self_registration": "false",
            "token_expiration": "30",
            "robot_token_duration": "1000" if self.edge else "43200",
            "read_only": "false",
            "email_host": "smtp.example.com", "email_port": "25", "email_from": "harbor <harbor@example.com>",
            "email_ssl": "false", "email_insecure": "false", "email_username": "harbor",
            "notification_enable": "true", "quota_per_project_enable": "true",
            "count_per_project": "-1", "storage_per_project": "-1",
            "scanner_skip_update_pulltime": "false" if not self.edge else "true",
        }
        if auth == "oidc_auth":
            props.update({
                "oidc_name": "Keycloak", "oidc_endpoint": "https://sso.example.com/auth/realms/corp",
                "oidc_client_id": "harbor", "oidc_client_secret": "<enc-v1>" + self.h("oidc")[:44],
                "oidc_scope": "openid,email,profile,offline_access", "oidc_verify_cert": "true",
                "oidc_groups_claim": "groups"})
        else:
            props.update({
                "ldap_url": "ldaps://ldap.example.com", "ldap_base_dn": "ou=people,dc=example,dc=com",
                "ldap_search_dn": "cn=harbor,ou=svc,dc=example,dc=com",
                "ldap_search_password": "<enc-v1>" + self.h("ldap")[:44],
                "ldap_uid": "uid", "ldap_filter": "", "ldap_scope": "2", "ldap_timeout": "5",
                "ldap_verify_cert": "true", "ldap_group_base_dn": "ou=groups,dc=example,dc=com",
                "ldap_group_search_filter": "objectclass=groupOfNames",
                "ldap_group_attribute_name": "cn", "ldap_group_search_scope": "2",
                "ldap_group_admin_dn": "cn=harbor-admins,ou=groups,dc=example,dc=com",
                "ldap_group_membership_attribute": "memberof"})
        if self.edge:
            props["http_authproxy_endpoint"] = ""
            props["uaa_endpoint"] = "ümläut-ユニコード.example.com"
        pid = 0
        for k in sorted(props):
            pid += 1
            self.add("properties", id=pid, k=k, v=props[k])

    def gen_users(self):
        self.users = []      # dicts with user_id, username, deleted
        # rows 1 (admin) and 2 (anonymous) exist already: give them install-time values
        self.updates.append(
            "UPDATE harbor_user SET password='%s', salt='%s', password_version='sha256', "
            "creation_time='%s', update_time='%s' WHERE user_id=1;" % (
                self.h("adminpw")[:32], self.h("adminsalt")[:32], INSTALL_TIME,
                INSTALL_TIME + dt.timedelta(minutes=3)))
        self.updates.append(
            "UPDATE harbor_user SET creation_time='%s', update_time='%s' WHERE user_id=2;"
            % (INSTALL_TIME, INSTALL_TIME + dt.timedelta(minutes=3)))
        self.users.append({"user_id": 1, "username": "admin", "deleted": False})
        n = self.n(30, 0.5) + 10
        used = {"admin", "anonymous"}
        uid = 2
        empty_email_done = False
        for i in range(n):
            uid += 1
            f = self.r.choice(FIRST)
            l = self.r.choice(LAST)
            style = self.r.random()
            if style < 0.5:
                name = f
            elif style < 0.8:
                name = f"{f}.{l}"
            else:
                name = f"{f}{self.r.randint(1, 99)}"
            if self.edge and i == 1:
                name = "ünïcødé-用户-" + f
            if self.edge and i == 2:
                name = ("x" * 200) + "-" + f   # long user name (varchar 255)
            while name in used:
                name = f"{name}{self.r.randint(0, 9)}"
            used.add(name)
            created = self.when(DATA_START, DATA_END - dt.timedelta(days=30))
            deleted = self.r.random() < 0.07
            email = f"{name}@example.com"
            if not empty_email_done and self.r.random() < 0.2:
                email, empty_email_done = "", True      # LDAP/OIDC user without e-mail
            elif self.edge and self.r.random() < 0.15:
                email = None
            username = name
            if deleted:
                username = f"{name}#{uid}"
                if email:
                    email = f"{email}#{uid}"
            pw_version = "sha1" if created < dt.datetime(2019, 9, 1) else "sha256"
            self.add("harbor_user", user_id=uid, username=username, email=email,
                     password=self.h("pw", uid)[:32], realname=self.realname(f, l),
                     comment=self.maybe_null(self.r.choice(["", "", "onboarded via SSO",
                                                            "contractor", "team lead"])),
                     deleted=deleted, reset_uuid=None if self.r.random() < 0.9 else self.h("ru", uid)[:32],
                     salt=self.h("salt", uid)[:32], sysadmin_flag=self.r.random() < 0.06,
                     creation_time=created, update_time=self.after(created),
                     password_version=pw_version)
            self.users.append({"user_id": uid, "username": username, "deleted": deleted,
                               "name": name, "created": created})
        self.live_users = [u for u in self.users if not u["deleted"]]
        if self.auth_mode == "oidc_auth":
            oid = 0
            for u in self.users:
                if u["user_id"] == 1 or self.r.random() < 0.2:
                    continue
                oid += 1
                c = u.get("created", INSTALL_TIME)
                self.add("oidc_user", id=oid, user_id=u["user_id"],
                         secret="<enc-v1>" + self.h("oidcsec", oid)[:40],
                         subiss=f"{self.uuid('sub', oid)}https://sso.example.com/auth/realms/corp",
                         token=self.maybe_null("<enc-v1>" + self.h("tok", oid) * 3),
                         creation_time=c, update_time=self.after(c))

    def realname(self, f, l):
        name = f"{f.capitalize()} {l.capitalize()}"
        if self.edge and self.r.random() < 0.3:
            name += " — 開発者 ✓"
        return name

    def gen_groups(self):
        self.groups = []
        n = self.n(6, 0.5)
        for i in range(n):
            gid = i + 1
            if self.auth_mode == "ldap_auth":
                gtype = 1 if self.r.random() < 0.8 else 2
            else:
                gtype = 3 if self.r.random() < 0.8 else 2
            name = f"{self.r.choice(PROJ_WORDS)}-team-{gid}"
            if self.edge and i == 0:
                name = "グループ-équipe-" + name
            dn = f"cn={name},ou=groups,dc=example,dc=com" if gtype == 1 else ""
            c = self.when()
            self.add("user_group", id=gid, group_name=name, group_type=gtype, ldap_group_dn=dn,
                     creation_time=c, update_time=c)
            self.groups.append(gid)

    def gen_projects(self):
        self.projects = [{"project_id": 1, "name": "library", "deleted": False, "public": True,
                          "created": INSTALL_TIME}]
        self.updates.append("UPDATE project SET creation_time='%s', update_time='%s' WHERE project_id=1;"
                            % (INSTALL_TIME, INSTALL_TIME))
        self.updates.append("UPDATE project_member SET creation_time='%s', update_time='%s' WHERE id=1;"
                            % (INSTALL_TIME, INSTALL_TIME))
        self.updates.append("UPDATE project_metadata SET creation_time='%s', update_time='%s' WHERE id=1;"
                            % (INSTALL_TIME, INSTALL_TIME))
        self.updates.append("UPDATE quota SET creation_time='%s', update_time='%s' WHERE id=1;"
                            % (INSTALL_TIME, INSTALL_TIME))
        self.updates.append("UPDATE quota_usage SET creation_time='%s', update_time='%s' WHERE id=1;"
                            % (INSTALL_TIME, INSTALL_TIME))
        names = set(["library"])
        wanted = []
        if self.inv:
            for repo in self.inv.get("repositories", []):
                p = repo.get("project") or repo["name"].split("/")[0]
                if p not in names and p not in wanted:
                    wanted.append(p)
        n = max(self.n(12, 0.5) + 8, len(wanted) + 3)
        pid = 1
        self.meta_id = 1
        for i in range(n):
            pid += 1
            if i < len(wanted):
                name = wanted[i]
            else:
                name = f"{self.r.choice(PROJ_WORDS)}"
                if name in names or self.r.random() < 0.5:
                    name = f"{name}-{self.r.choice(['dev', 'prod', 'staging', 'team', 'int'])}"
                while name in names:
                    name = f"{name}{self.r.randint(1, 9)}"
                if self.edge and i == len(wanted) + 1:
                    name = "p" * 240                       # long project name
                if self.edge and i == len(wanted) + 2:
                    name = "ünïcødé-项目"
            names.add(name)
            # always at least one deleted project (renamed "<name>#<id>" by 1.10)
            deleted = i >= len(wanted) and (self.r.random() < 0.08 or i == len(wanted) + 3)
            owner = self.r.choice(self.live_users)["user_id"]
            created = self.when(DATA_START, DATA_END - dt.timedelta(days=60))
            stored_name = f"{name}#{pid}" if deleted else name
            public = self.r.random() < 0.4
            self.add("project", project_id=pid, owner_id=owner, name=stored_name,
                     creation_time=created, update_time=self.after(created), deleted=deleted)
            self.projects.append({"project_id": pid, "name": name, "deleted": deleted,
                                  "public": public, "created": created, "owner": owner})
        for p in self.projects[1:]:
            md = {"public": "true" if p["public"] else "false"}
            if self.r.random() < 0.6:
                md["enable_content_trust"] = self.r.choice(["true", "false"])
                md["prevent_vul"] = self.r.choice(["true", "false"])
                md["severity"] = self.r.choice(["low", "medium", "high", "critical", "negligible"])
                md["auto_scan"] = self.r.choice(["true", "false"])
                md["reuse_sys_cve_whitelist"] = self.r.choice(["true", "false"])
            for k, v in md.items():
                self.meta_id += 1
                if self.edge and k == "severity" and self.r.random() < 0.5:
                    v = None
                self.add("project_metadata", id=self.meta_id, project_id=p["project_id"], name=k,
                         value=v, creation_time=p["created"], update_time=p["created"])
        self.live_projects = [p for p in self.projects if not p["deleted"]]

    def gen_members(self):
        mid = 1
        seen = {(1, 1, "u")}
        for p in self.projects[1:]:
            cands = [(p["owner"], "u", 1)]
            for u in self.r.sample(self.users, min(len(self.users), self.r.randint(0, 5))):
                cands.append((u["user_id"], "u", self.r.choice([1, 2, 2, 3, 3, 4, 5])))
            if self.groups and self.r.random() < 0.5:
                cands.append((self.r.choice(self.groups), "g", self.r.choice([2, 3, 4])))
            for eid, et, role in cands:
                if (p["project_id"], eid, et) in seen:
                    continue
                seen.add((p["project_id"], eid, et))
                mid += 1
                c = self.after(p["created"], 86400 * 60)
                self.add("project_member", id=mid, project_id=p["project_id"], entity_id=eid,
                         entity_type=et, role=role, creation_time=c, update_time=c)
        # deleted users keep their memberships in 1.10 (removed by 2.4.0)
        for u in self.users:
            if u["deleted"] and self.r.random() < 0.8:
                p = self.r.choice(self.projects)
                if (p["project_id"], u["user_id"], "u") in seen:
                    continue
                seen.add((p["project_id"], u["user_id"], "u"))
                mid += 1
                c = self.after(p["created"], 86400 * 60)
                self.add("project_member", id=mid, project_id=p["project_id"],
                         entity_id=u["user_id"], entity_type="u", role=2,
                         creation_time=c, update_time=c)

    def gen_labels(self):
        self.labels = []       # (id, scope, project_id, deleted)
        lid = 0
        colors = ["#0065AB", "#343DAC", "#781DA0", "#9B0D54", "#C92100", "#F52F22", "#FFDC0B",
                  "#48960C", "#62A420", "#00AB9A", "", "#000000"]
        gnames = ["stable", "deprecated", "prod-ready", "security-approved", "team:infra",
                  "needs-review", "gpu", "arm64", "lts", "experimental"]
        for name in gnames[: self.n(8, 0.3)]:
            lid += 1
            c = self.when()
            if self.edge and lid == 1:
                name = "ラベル-étiquette-✓"
            if self.edge and lid == 2:
                name = "L" * 128
            deleted = self.r.random() < 0.1
            self.add("harbor_label", id=lid, name=name,
                     description=self.maybe_null(self.r.choice(["", "global label", "set by CI"])),
                     color=self.maybe_null(self.r.choice(colors)), level="u", scope="g",
                     project_id=0, creation_time=c, update_time=self.after(c), deleted=deleted)
            self.labels.append((lid, "g", 0, deleted))
        for p in self.live_projects:
            for j in range(self.r.randint(0, 3)):
                lid += 1
                c = self.after(p["created"])
                self.add("harbor_label", id=lid, name=f"{p['name'][:40]}-label-{j}",
                         description="", color=self.r.choice(colors), level="u", scope="p",
                         project_id=p["project_id"], creation_time=c, update_time=c,
                         deleted=self.r.random() < 0.05)
                self.labels.append((lid, "p", p["project_id"], False))

    # -- images ------------------------------------------------------------
    def new_blob(self, digest, content_type, size, created):
        if digest in self.blobs:
            return self.blobs[digest]
        b = {"digest": digest, "content_type": content_type, "size": size, "created": created}
        self.blobs[digest] = b
        return b

    def make_image(self, key, created, kind=None, base_layers=None):
        """Create one synthetic manifest; returns a dict describing it."""
        r = self.r
        if kind is None:
            x = r.random()
            if self.edge:
                kind = ("schema2" if x < 0.62 else "list" if x < 0.72 else "schema1" if x < 0.82
                        else "oci" if x < 0.9 else "noblob")
            else:
                kind = "schema2" if x < 0.8 else "list" if x < 0.9 else "schema1"
        dg = self.digest("manifest", key)
        img = {"digest": dg, "kind": kind, "blobs": [], "created": created}
        if kind in ("schema2", "oci", "noblob"):
            cfg = self.digest("config", key)
            layers = list(base_layers or [])
            for k in range(r.randint(1, 5)):
                layers.append((self.digest("layer", key, k),
                               int(math.exp(r.uniform(math.log(200), math.log(80_000_000))))))
            mt = MT_OCI if kind == "oci" else MT_SCHEMA2
            lmt = MT_OCI_LAYER if kind == "oci" else MT_LAYER
            img["manifest_size"] = 300 + 160 * len(layers) + r.randint(0, 200)
            img["media_type"] = mt
            if kind != "noblob":
                self.new_blob(dg, mt, img["manifest_size"], created)
            img["blobs"].append(dg)
            self.new_blob(cfg, MT_OCI_CONFIG if kind == "oci" else MT_CONFIG,
                          r.randint(1200, 16000), created)
            img["blobs"].append(cfg)
            for ldg, size in layers:
                ct = lmt
                if not self.edge and r.random() < 0.01:
                    ct = MT_FOREIGN
                self.new_blob(ldg, ct, size, created)
                img["blobs"].append(ldg)
        elif kind == "schema1":
            img["manifest_size"] = r.randint(2500, 9000)
            img["media_type"] = MT_SCHEMA1
            self.new_blob(dg, MT_SCHEMA1, img["manifest_size"], created)
            img["blobs"].append(dg)
            for k in range(r.randint(2, 6)):
                ldg = self.digest("s1layer", key, k)
                self.new_blob(ldg, MT_S1_LAYER, r.randint(32, 40_000_000), created)
                img["blobs"].append(ldg)
        elif kind == "list":
            img["media_type"] = MT_LIST
            img["manifest_size"] = r.randint(700, 1600)
            self.new_blob(dg, MT_LIST, img["manifest_size"], created)
            img["blobs"].append(dg)
            for arch in r.sample(["amd64", "arm64", "arm", "ppc64le", "s390x"], r.randint(2, 3)):
                child = self.make_image(f"{key}/{arch}", created, kind="schema2",
                                        base_layers=base_layers)
                img["blobs"].append(child["digest"])
        return img

    def gen_images(self):
        """repositories, their manifests and tags (synthetic).  With an inventory, the
        synthetic repositories go only into projects that the inventory does not use, so
        the inventory's projects match the storage tree exactly."""
        base_pool = [(self.digest("base", i), int(math.exp(self.r.uniform(math.log(700_000),
                                                                       math.log(60_000_000)))))
                     for i in range(12)]
        target = self.n(100)
        rid = len(self.repos)
        target += rid
        names = set(r["name"] for r in self.repos)
        live = [p for p in self.live_projects if p["name"] not in self.storage_projects]
        all_images = []
        while rid < target:
            p = live[rid % len(live)] if rid < len(live) else self.r.choice(live)
            pname = p["name"]
            depth = self.r.random()
            app = self.r.choice(APP_WORDS)
            if depth < 0.75:
                name = f"{pname}/{app}"
            else:
                name = f"{pname}/{self.r.choice(PROJ_WORDS)}/{app}"
            if self.edge and rid == 3:
                name = f"{pname}/" + ("r" * (255 - len(pname) - 1))   # 255 chars
            if self.edge and rid == 4:
                name = f"{pname}/ünïcødé-répo-イメージ"
            while name in names:
                name = f"{name}-{self.r.randint(1, 99)}"
            if len(name) > 255:
                continue
            names.add(name)
            rid += 1
            created = self.after(p["created"], 86400 * 90)
            repo = {"repository_id": rid, "name": name, "project_id": p["project_id"],
                    "created": created, "images": []}
            n_img = self.r.choice([1, 1, 2, 2, 3, 4, 5, 6, 8])
            repo_tags = set()
            versions = self.r.randint(1, 3)
            for k in range(n_img):
                t_img = self.after(created, 86400 * 200)
                if all_images and self.r.random() < (0.2 if self.edge else 0.06):
                    img = self.r.choice(all_images)          # same digest in another repo
                else:
                    base = self.r.sample(base_pool, self.r.randint(0, 2))
                    img = self.make_image(f"{rid}/{k}", t_img, base_layers=base)
                    all_images.append(img)
                tags = [f"{versions}.{k}.{self.r.randint(0, 20)}"]
                if k == n_img - 1:
                    tags.append("latest")
                if self.r.random() < 0.25:
                    tags.append(self.r.choice(["stable", "prod", "v%d" % versions, f"build-{k + 100}",
                                               "sha-" + img["digest"][7:15]]))
                if self.edge and rid == 5 and k == 0:
                    tags.append("t" * 128)                     # longest tag that fits access_log
                if self.edge and rid == 6 and k == 0:
                    tags.append("タグ-ü")
                tags = sorted(set(tags) - repo_tags)
                repo_tags.update(tags)
                if not tags:
                    continue
                repo["images"].append((img, tags, t_img))
            self.repos.append(repo)

    def gen_images_from_inventory(self):
        """Repositories/tags/blobs from the registry inventory (shared/fixtures/registry).

        Format used: {"repositories": [{"name", "project", "tags": [{"name", "digest",
        "media_type", "size", "blobs": [{"digest", "size", "media_type", "role"}],
        "children": [digest, ...]}], "manifests": [{"digest", "media_type", "size", "blobs",
        "children"?}], "untagged": [...]}]}.  1.10 keeps one artifact row per tag, a
        repository row only for repositories with at least one tag, and blob rows for every
        manifest (tagged, child or untagged), config and layer it saw pushed."""
        pid_by_name = {p["name"]: p for p in self.projects}
        rid = 0
        for rrepo in self.inv.get("repositories", []):
            name = rrepo["name"]
            p = pid_by_name.get(rrepo.get("project") or name.split("/")[0])
            if p is None or p["deleted"]:
                continue
            self.storage_projects.add(p["name"])
            if not rrepo.get("tags"):
                continue
            rid += 1
            created = self.after(p["created"], 86400 * 30)
            repo = {"repository_id": rid, "name": name, "project_id": p["project_id"],
                    "created": created, "images": []}
            manifests = {}
            for m in rrepo.get("manifests", []) or []:
                if isinstance(m, dict) and m.get("digest"):
                    manifests[m["digest"]] = m

            def add_manifest(m, when):
                """blob rows for one manifest and its config/layers; returns digests."""
                dg = m["digest"]
                mt = m.get("media_type") or MT_SCHEMA2
                out = []
                if not any(b.get("digest") == dg for b in m.get("blobs", []) or []):
                    self.new_blob(dg, mt, int(m.get("size") or 0), when)
                    out.append(dg)
                for b in m.get("blobs", []) or []:
                    self.new_blob(b["digest"], b.get("media_type") or MT_LAYER,
                                  int(b.get("size") or 0), when)
                    out.append(b["digest"])
                return out

            by_digest = {}
            for t in rrepo.get("tags", []):
                dg = t["digest"]
                if dg not in by_digest:
                    t_img = self.after(created, 86400 * 100)
                    img = {"digest": dg, "kind": "inventory",
                           "media_type": t.get("media_type") or MT_SCHEMA2, "blobs": [],
                           "created": t_img}
                    img["blobs"] += add_manifest(dict(manifests.get(dg, {}), **t), t_img)
                    for c in t.get("children", []) or []:
                        cm = c if isinstance(c, dict) else manifests.get(c, {"digest": c})
                        cm = dict(cm, digest=cm.get("digest") or c)
                        add_manifest(cm, t_img)
                        img["blobs"].append(cm["digest"])
                    by_digest[dg] = (img, [], t_img)
                by_digest[dg][1].append(t["name"])
            # manifests nobody tags any more still have their blob rows
            for dg, m in sorted(manifests.items()):
                if dg not in by_digest:
                    add_manifest(m, created)
            repo["images"] = [(img, sorted(tags), t0) for img, tags, t0 in by_digest.values()]
            self.repos.append(repo)

    def gen_orphans(self):
        """Artifacts whose repository row is gone (harbor issue 11754)."""
        self.orphans = []
        n = self.n(2, 0.5) + (2 if self.edge else 0)
        live = [p for p in self.live_projects if p["project_id"] != 1] or self.live_projects
        for i in range(n):
            p = self.r.choice(live)
            name = f"{p['name']}/ghost-{self.r.choice(APP_WORDS)}-{i}"
            t0 = self.after(p["created"], 86400 * 100)
            imgs = []
            for k in range(self.r.randint(1, 3)):
                kind = "schema2"
                if self.edge and k == 1:
                    kind = "noblob"
                img = self.make_image(f"ghost/{i}/{k}", t0, kind=kind)
                tags = [f"0.{k}", "latest"] if k == 0 else [f"0.{k}"]
                imgs.append((img, tags, t0))
            self.orphans.append({"name": name, "project_id": p["project_id"], "images": imgs})

    def gen_artifact_rows(self):
        aid = 0
        abid = 0
        self.tag_rows = []            # (artifact_id, repo_name, project_id, tag, digest, push, pull)
        seen_ab = set()
        for repo in self.repos:
            c = repo["created"]
            last_update = c
            pulls = 0
            for img, tags, t_img in repo["images"]:
                for tag in tags:
                    aid += 1
                    push = self.after(t_img, 86400 * 10)
                    pull = None if self.r.random() < 0.3 else self.after(push, 86400 * 60)
                    if self.edge and self.r.random() < 0.05:
                        push = None
                    self.add("artifact", id=aid, project_id=repo["project_id"], repo=repo["name"],
                             tag=tag, digest=img["digest"], kind="Docker-Image",
                             creation_time=push or t_img, pull_time=pull, push_time=push)
                    self.tag_rows.append((aid, repo["name"], repo["project_id"], tag, img["digest"],
                                          push or t_img, pull))
                    last_update = max(last_update, push or t_img)
                    pulls += self.r.randint(0, 40)
                for bd in img["blobs"]:
                    if (img["digest"], bd) in seen_ab:
                        continue
                    seen_ab.add((img["digest"], bd))
                    abid += 1
                    self.add("artifact_blob", id=abid, digest_af=img["digest"], digest_blob=bd,
                             creation_time=t_img)
            desc = self.r.choice([None, "", "Service image built by CI",
                                  "## README\nBuilt from `Dockerfile` in repo.\n\n* amd64\n* arm64"])
            if self.edge and repo["repository_id"] == 4:
                desc = "説明 — ünïcødé description ✓"
            self.add("repository", repository_id=repo["repository_id"], name=repo["name"],
                     project_id=repo["project_id"], description=desc, pull_count=pulls,
                     star_count=0, creation_time=c, update_time=last_update)
        for o in self.orphans:
            for img, tags, t0 in o["images"]:
                for tag in tags:
                    aid += 1
                    push = self.after(t0, 86400 * 5)
                    self.add("artifact", id=aid, project_id=o["project_id"], repo=o["name"], tag=tag,
                             digest=img["digest"], kind="Docker-Image", creation_time=push,
                             pull_time=None, push_time=push)
                    self.tag_rows.append((aid, o["name"], o["project_id"], tag, img["digest"], push, None))
                for bd in img["blobs"]:
                    if (img["digest"], bd) in seen_ab:
                        continue
                    seen_ab.add((img["digest"], bd))
                    abid += 1
                    self.add("artifact_blob", id=abid, digest_af=img["digest"], digest_blob=bd,
                             creation_time=t0)
        # blob table (ids in creation order)
        bid = 0
        self.blob_ids = {}
        for b in sorted(self.blobs.values(), key=lambda b: (b["created"], b["digest"])):
            bid += 1
            self.blob_ids[b["digest"]] = bid
            self.add("blob", id=bid, digest=b["digest"], content_type=b["content_type"],
                     size=b["size"], creation_time=b["created"])
        # project_blob
        pbid = 0
        seen = set()
        for repo in self.repos + self.orphans:
            for img, _, t_img in repo["images"]:
                for bd in img["blobs"]:
                    if bd not in self.blob_ids:
                        continue
                    k = (repo["project_id"], self.blob_ids[bd])
                    if k in seen:
                        continue
                    seen.add(k)
                    pbid += 1
                    self.add("project_blob", id=pbid, project_id=k[0], blob_id=k[1], creation_time=t_img)

    def gen_resource_labels(self):
        rid = 0
        seen = set()
        usable = [l for l in self.labels]
        if not usable:
            return
        by_digest = {}
        for row in self.tag_rows:
            by_digest.setdefault((row[1], row[4]), []).append(row)
        for (repo, dg), rows in by_digest.items():
            if self.r.random() > 0.15:
                continue
            lab = self.r.choice(usable)
            if lab[1] == "p" and lab[2] != rows[0][2]:
                continue
            c = self.after(rows[0][5], 86400 * 20)
            # label one or several tags of the same manifest; rows for tags of one manifest that
            # carry the same label get identical timestamps (upstream keeps an arbitrary one)
            for row in rows if self.r.random() < 0.5 else rows[:1]:
                res = f"{row[1]}:{row[3]}"
                if len(res) > 256:
                    continue
                k = (lab[0], 0, res, "i")
                if k in seen:
                    continue
                seen.add(k)
                rid += 1
                self.add("harbor_resource_label", id=rid, label_id=lab[0], resource_id=0,
                         resource_name=res, resource_type="i", creation_time=c, update_time=c)
        # labels on images whose tag no longer exists
        for i in range(self.n(3, 0.5)):
            lab = self.r.choice([l for l in usable if l[1] == "g"] or usable)
            repo = self.r.choice(self.repos)
            res = f"{repo['name']}:gone-{i}"
            if len(res) > 256 or (lab[0], 0, res, "i") in seen:
                continue
            seen.add((lab[0], 0, res, "i"))
            rid += 1
            c = self.when()
            self.add("harbor_resource_label", id=rid, label_id=lab[0], resource_id=0,
                     resource_name=res, resource_type="i", creation_time=c, update_time=c)
        # repository labels
        for repo in self.repos:
            if self.r.random() < 0.1:
                lab = self.r.choice(usable)
                if lab[1] == "p" and lab[2] != repo["project_id"]:
                    continue
                rid += 1
                c = self.after(repo["created"])
                self.add("harbor_resource_label", id=rid, label_id=lab[0],
                         resource_id=repo["repository_id"], resource_name="",
                         resource_type="r", creation_time=c, update_time=c)
        if self.edge:
            rid += 1
            c = self.when()
            self.add("harbor_resource_label", id=rid, label_id=usable[0][0], resource_id=1,
                     resource_name=None, resource_type="p", creation_time=c, update_time=c)

    def gen_access_log(self):
        ev = []   # (time, username, project_id, repo_name, repo_tag, operation)
        names = [u["username"] for u in self.live_users] + ["anonymous", "admin"]
        for p in self.projects[1:]:
            ev.append((p["created"], self.r.choice(names), p["project_id"], p["name"] + "/", "N/A",
                       "create"))
            if p["deleted"]:
                ev.append((self.after(p["created"], 86400 * 200), "admin", p["project_id"],
                           p["name"] + "/", "N/A", "delete"))
        for (aid, repo, pid, tag, dg, push, pull) in self.tag_rows:
            ev.append((push, self.r.choice(names), pid, repo, tag, "push"))
            for _ in range(self.r.choice([0, 1, 2, 3, 4, 6, 9])):
                t = self.after(push, 86400 * 120)
                by_digest = self.r.random() < 0.1
                ev.append((t, self.r.choice(names), pid, repo, "" if by_digest else tag, "pull"))
            if self.r.random() < 0.08:
                ev.append((self.after(push), self.r.choice(names), pid, repo, f"{tag}-old", "delete"))
        if self.edge:
            p = self.live_projects[1]
            t = self.when()
            ev += [(t, "admin", p["project_id"], p["name"] + "/x", None, "push"),
                   (t, "admin", p["project_id"], p["name"] + "/x", None, "pull"),
                   (t, "admin", p["project_id"], p["name"] + "/x", None, "delete"),
                   (t, "admin", p["project_id"], p["name"] + "/x", None, "create"),
                   (t, "admin", p["project_id"], p["name"] + "/x", "1.0", "create"),
                   (t, "admin", p["project_id"], p["name"] + "/x", "1.0", "scan"),
                   (t, "admin", p["project_id"], None, "1.0", "push"),
                   (t, "ユーザー", p["project_id"], p["name"] + "/ü", "タグ", "pull")]
        ev.sort(key=lambda e: (e[0], e[2], e[3] or "", e[4] or "", e[5]))
        for i, e in enumerate(ev, 1):
            guid = ""
            if self.edge and i % 97 == 0:
                guid = None
            self.add("access_log", log_id=i, username=e[1], project_id=e[2], repo_name=e[3],
                     # access_log.repo_tag is varchar(128) in 1.10; edge tags are longer
                     repo_tag=e[4][:128] if e[4] else e[4], guid=guid, operation=e[5],
                     op_time=None if (self.edge and i % 501 == 0) else e[0])

    def gen_quota(self):
        qid = 1
        usage = {}
        counts = {}
        for (aid, repo, pid, tag, dg, push, pull) in self.tag_rows:
            counts[pid] = counts.get(pid, 0) + 1
        for repo in self.repos + self.orphans:
            for img, _, _ in repo["images"]:
                for bd in img["blobs"]:
                    if bd in self.blobs:
                        usage.setdefault(repo["project_id"], {})[bd] = self.blobs[bd]["size"]
        lib_used = {"count": counts.get(1, 0), "storage": sum(usage.get(1, {}).values())}
        self.updates.append("UPDATE quota_usage SET used='%s' WHERE id=1;" % json.dumps(lib_used))
        for p in self.projects[1:]:
            if p["deleted"] and self.r.random() < 0.5:
                continue              # quota removed together with the project
            qid += 1
            hard = {"count": -1, "storage": -1}
            if self.r.random() < 0.3:
                hard = {"count": self.r.choice([100, 500, -1]),
                        "storage": self.r.choice([10 * 2 ** 30, 50 * 2 ** 30, -1])}
            used = {"count": counts.get(p["project_id"], 0),
                    "storage": sum(usage.get(p["project_id"], {}).values())}
            c = p["created"]
            self.add("quota", id=qid, reference="project", reference_id=str(p["project_id"]),
                     hard=json.dumps(hard), creation_time=c, update_time=self.after(c))
            self.add("quota_usage", id=qid, reference="project", reference_id=str(p["project_id"]),
                     used=json.dumps(used), creation_time=c, update_time=self.after(c))
        # dirty quota rows for a project id that never existed
        qid += 1
        ghost = str(len(self.projects) + 50)
        self.add("quota", id=qid, reference="project", reference_id=ghost,
                 hard=json.dumps({"count": -1, "storage": -1}), creation_time=DATA_START,
                 update_time=DATA_START)
        self.add("quota_usage", id=qid, reference="project", reference_id=ghost,
                 used=json.dumps({"count": 3, "storage": 12345}), creation_time=DATA_START,
                 update_time=DATA_START)

    def gen_scanners_and_reports(self):
        c = dt.datetime(2019, 12, 20, 10, 0, 0, 5000)
        clair = self.uuid("clair")
        trivy = self.uuid("trivy")
        anchore = self.uuid("anchore")
        self.add("scanner_registration", id=1, uuid=clair, url="http://clair-adapter:8080",
                 name="Clair", description=None if self.edge else "The clair scanner adapter",
                 auth="", access_cred="", disabled=False, is_default=True, use_internal_addr=True,
                 immutable=True, skip_cert_verify=False, create_time=c, update_time=c)
        self.add("scanner_registration", id=2, uuid=trivy, url="http://trivy.scanners.example.com:8080",
                 name="Trivy", description="Trivy scanner added by hand", auth="", access_cred="",
                 disabled=False, is_default=False, use_internal_addr=False, immutable=False,
                 skip_cert_verify=False, create_time=self.after(c), update_time=self.after(c))
        self.add("scanner_registration", id=3, uuid=anchore, url="https://anchore.example.com:8228",
                 name="Anchore-prod" if not self.edge else "Anchore—プロド", description="",
                 auth="Bearer", access_cred="<enc-v1>" + self.h("anchore")[:32], disabled=True,
                 is_default=False, use_internal_addr=False, immutable=False, skip_cert_verify=True,
                 create_time=self.after(c), update_time=self.after(c))
        sid = 0
        done = set()
        for (aid, repo, pid, tag, dg, push, pull) in self.tag_rows:
            if self.r.random() > 0.35:
                continue
            for reg in ([clair] if self.r.random() < 0.7 else [clair, trivy]):
                if (dg, reg) in done:
                    continue
                done.add((dg, reg))
                sid += 1
                st = self.r.choice(["Success"] * 6 + ["Error", "Pending", "Running"])
                start = self.after(push or DATA_START, 86400 * 3)
                vulns = []
                for k in range(self.r.randint(0, 4)):
                    pkg = self.r.choice(PKGS)
                    vulns.append({"id": f"CVE-20{self.r.randint(14, 20)}-{self.r.randint(1000, 29999)}",
                                  "package": pkg, "version": f"1.{self.r.randint(0, 9)}.{k}",
                                  "fix_version": self.r.choice(["", f"1.{self.r.randint(0, 9)}.{k + 1}"]),
                                  "severity": self.r.choice(SEVERITIES),
                                  "description": f"A flaw was found in {pkg}.",
                                  "links": [f"https://security-tracker.debian.org/tracker/{pkg}"]})
                report = {"generated_at": start.isoformat() + "Z",
                          "artifact": {"repository": repo, "digest": dg, "tag": tag,
                                       "mime_type": MT_SCHEMA2},
                          "scanner": {"name": "Clair" if reg == clair else "Trivy",
                                      "vendor": "CoreOS" if reg == clair else "Aqua Security",
                                      "version": "2.x" if reg == clair else "0.9.2"},
                          "severity": max((v["severity"] for v in vulns), key=SEVERITIES.index,
                                          default="None"),
                          "vulnerabilities": vulns}
                self.add("scan_report", id=sid, uuid=self.uuid("report", sid), digest=dg,
                         registration_uuid=reg, mime_type=REPORT_MIME,
                         job_id=self.h("scanjob", sid)[:24], track_id=self.uuid("track", sid),
                         requester=self.uuid("req", sid), status=st,
                         status_code={"Success": 3, "Error": 3, "Pending": 0, "Running": 2}[st],
                         status_rev=int(start.timestamp()),
                         report=json.dumps(report, sort_keys=True) if st == "Success" else None,
                         start_time=start, end_time=self.after(start, 600))

    def gen_replication(self):
        regs = [("dockerhub", "https://hub.docker.com", "docker-hub"),
                ("dr-site", "https://harbor-dr.example.com", "harbor"),
                ("quay", "https://quay.io", "quay-io"),
                ("gcr", "https://gcr.io", "google-gcr"),
                ("ecr-eu", "https://api.ecr.eu-west-1.amazonaws.com", "aws-ecr"),
                ("internal", "http://registry.internal:5000", "docker-registry")]
        for i, (name, url, typ) in enumerate(regs[: max(2, self.n(4, 0.4))], 1):
            c = self.when()
            self.add("registry", id=i, name=name, url=url,
                     access_key=self.maybe_null(self.r.choice(["", "robot", "svc-harbor"])),
                     access_secret=self.maybe_null("<enc-v1>" + self.h("sec", i)[:40]),
                     insecure=self.r.random() < 0.2, creation_time=c, update_time=self.after(c),
                     credential_type="basic", type=typ,
                     description=self.maybe_null(self.r.choice(["", "DR copy", "mirror"])),
                     health=self.r.choice(["healthy", "unhealthy", ""]))
        n_regs = len(self.rows["registry"])
        self.rep_policies = []
        n = self.n(5, 0.5) + 1
        for i in range(1, n + 1):
            c = self.when()
            kind = self.r.choice(["manual", "scheduled", "event_based"])
            settings = {"cron": self.r.choice(["0 0 * * * *", "0 0 2 * * *", "0 */30 * * * *"])} \
                if kind == "scheduled" else None
            trigger = json.dumps({"type": kind, "trigger_settings": settings})
            pull = self.r.random() < 0.3
            p = self.r.choice(self.live_projects)
            filters = [{"type": "name", "value": f"{p['name']}/**"}]
            if self.r.random() < 0.5:
                filters.append({"type": "tag", "value": self.r.choice(["v*", "latest", "**"])})
            if self.r.random() < 0.2:
                filters.append({"type": "label", "value": ["stable"]})
            name = f"{'pull' if pull else 'push'}-{p['name'][:30]}-{i}"
            if self.edge and i == 1:
                name = "レプリケーション-ü-" + name
            self.add("replication_policy", id=i, name=name,
                     dest_registry_id=None if pull else self.r.randint(1, n_regs), enabled=self.r.random() < 0.85,
                     description=self.maybe_null(self.r.choice(["", "nightly DR", "mirror upstream"])),
                     deleted=False, trigger=trigger, filters=json.dumps(filters),
                     replicate_deletion=self.r.random() < 0.3, start_time=None,
                     creation_time=c, update_time=self.after(c), creator="admin",
                     src_registry_id=self.r.randint(1, n_regs) if pull else None,
                     dest_namespace=self.r.choice([None, None, "", "dr-" + p["name"][:20]]),
                     override=True)
            self.rep_policies.append((i, kind, c))
        sj = 0
        for pid_, kind, c in self.rep_policies:
            if kind == "scheduled":
                sj += 1
                self.add("replication_schedule_job", id=sj,
                         status=self.r.choice(["scheduled", "pending", "running", "finished",
                                               "error", "stopped"]),
                         policy_id=pid_, job_id=self.h("repsched", sj)[:24], creation_time=c,
                         update_time=self.after(c))
        eid = 0
        tid = 0
        max_pid = len(self.rep_policies)
        for k in range(self.n(30)):
            eid += 1
            pol = self.r.choice(self.rep_policies)
            policy_id = pol[0] if self.r.random() > 0.05 else max_pid + 7     # deleted policy
            start = self.after(pol[2], 86400 * 300)
            trig = {"manual": "manual", "scheduled": "scheduled", "event_based": "event_based"}[pol[1]]
            tasks = []
            for j in range(self.r.choice([0, 1, 1, 2, 3, 5])):
                tid += 1
                st = self.r.choice(["Succeed"] * 5 + ["Failed", "Stopped", "InProgress", "Pending"])
                t0 = self.after(start, 600)
                tasks.append(st)
                app = self.r.choice(self.repos)["name"]
                if len(app) > 200:
                    app = app[:200]
                self.add("replication_task", id=tid, execution_id=eid,
                         resource_type=self.r.choice(["image", "image", "chart"]),
                         src_resource=f"{app}:[{','.join(['latest', 'v1'][:self.r.randint(1, 2)])}]",
                         dst_resource=f"dr/{app.split('/')[-1]}:[latest]",
                         operation=self.r.choice(["copy", "copy", "deletion"]),
                         job_id=self.h("repjob", tid)[:24], status=st, start_time=t0,
                         end_time=None if st in ("InProgress", "Pending") else self.after(t0, 900),
                         status_revision=self.r.choice([0, int(t0.timestamp())]))
            if not tasks:
                status = self.r.choice(["Failed", "Succeed", "InProgress"])
            elif "InProgress" in tasks or "Pending" in tasks:
                status = "InProgress"
            else:
                status = self.r.choice(["InProgress", "Succeed" if "Failed" not in tasks else "Failed"])
            counts = {s: tasks.count(s) for s in set(tasks)}
            self.add("replication_execution", id=eid, policy_id=policy_id, status=status,
                     status_text="" if status != "Failed" else "failed to fetch artifacts: 401",
                     total=len(tasks), failed=counts.get("Failed", 0),
                     succeed=counts.get("Succeed", 0),
                     in_progress=counts.get("InProgress", 0) + counts.get("Pending", 0),
                     stopped=counts.get("Stopped", 0), trigger=trig, start_time=start,
                     end_time=None if status == "InProgress" else self.after(start, 3600))
        # tasks whose execution row is gone
        for j in range(2):
            tid += 1
            t0 = self.when()
            self.add("replication_task", id=tid, execution_id=eid + 100 + j, resource_type="image",
                     src_resource="library/x:[1]", dst_resource="dr/x:[1]", operation="copy",
                     job_id=self.h("orphantask", j)[:24], status="Succeed", start_time=t0,
                     end_time=self.after(t0, 60), status_revision=0)

    def gen_retention(self):
        self.schedules = []
        sched_id = 0
        pol_id = 0
        for p in self.live_projects:
            if self.r.random() > 0.35:
                continue
            pol_id += 1
            scheduled = self.r.random() < 0.7
            refs = {}
            cron = ""
            if scheduled:
                sched_id += 1
                cron = self.r.choice(["0 0 0 * * *", "0 0 * * * *", "0 0 0 * * 0"])
                refs = {"job_id": sched_id}
                c = self.after(p["created"])
                self.add("schedule", id=sched_id, job_id=self.h("retsched", sched_id)[:24],
                         status=self.r.choice(["", "Pending", "Scheduled", "Scheduled", "Running",
                                               "Success", "Error", "Stopped"]),
                         creation_time=c, update_time=self.after(c))
            rules = [{"id": 0, "priority": 0, "disabled": False, "action": "retain",
                      "template": self.r.choice(["latestPushedK", "latestPulledN", "nDaysSinceLastPush",
                                                 "always"]),
                      "params": {"latestPushedK": self.r.choice([3, 10, 20])},
                      "tag_selectors": [{"kind": "doublestar", "decoration": "matches",
                                         "pattern": self.r.choice(["**", "v*", "release-*"])}],
                      "scope_selectors": {"repository": [{"kind": "doublestar",
                                                          "decoration": "repoMatches",
                                                          "pattern": "**"}]}}]
            data = {"id": pol_id, "algorithm": "or", "rules": rules,
                    "trigger": {"kind": "Schedule", "settings": {"cron": cron}, "references": refs},
                    "scope": {"level": "project", "ref": p["project_id"]}}
            t = self.when()
            self.add("retention_policy", id=pol_id, scope_level="project",
                     scope_reference=p["project_id"], trigger_kind="Schedule",
                     data=json.dumps(data, separators=(",", ":")),
                     create_time=t.time(), update_time=self.after(t).time())
            self.meta_id += 1
            self.add("project_metadata", id=self.meta_id, project_id=p["project_id"],
                     name="retention_id", value=str(pol_id), creation_time=t, update_time=t)
        # an orphan schedule row (its policy was deleted)
        sched_id += 1
        c = self.when()
        self.add("schedule", id=sched_id, job_id=self.maybe_null(self.h("orphansched")[:24]),
                 status="Scheduled", creation_time=c, update_time=c)
        n_pol = pol_id
        eid = 0
        tid = 0
        if n_pol == 0:
            return
        for k in range(self.n(10)):
            eid += 1
            pol = self.r.randint(1, n_pol) if self.r.random() > 0.05 else n_pol + 9
            start = self.when()
            self.add("retention_execution", id=eid, policy_id=pol, dry_run=self.r.random() < 0.3,
                     trigger=self.r.choice(["Manual", "Schedule", "Schedule"]), start_time=start)
            for j in range(self.r.choice([0, 1, 2, 3, 4])):
                tid += 1
                st = self.r.choice(["Success"] * 4 + ["Error", "error", "pending", "Pending",
                                                      "Running", "Stopped", "Scheduled"])
                t0 = self.after(start, 60)
                total = self.r.randint(0, 40)
                self.add("retention_task", id=tid, execution_id=eid,
                         repository=self.r.choice(self.repos)["name"].split("/", 1)[1],
                         job_id=self.h("rettask", tid)[:24], status=st,
                         status_code={"Success": 3, "Error": 3, "error": 3, "pending": 0,
                                      "Pending": 0, "Running": 2, "Stopped": 3, "Scheduled": 1}[st],
                         status_revision=self.maybe_null(int(t0.timestamp())), start_time=t0,
                         end_time=self.after(t0, 300),
                         total=self.maybe_null(total), retained=self.maybe_null(self.r.randint(0, total)))
        tid += 1
        t0 = self.when()
        self.add("retention_task", id=tid, execution_id=eid + 50, repository="gone",
                 job_id=self.h("rettaskorphan")[:24], status="Success", status_code=3,
                 status_revision=0, start_time=t0, end_time=t0, total=1, retained=1)

    def gen_admin_jobs(self):
        jid = 0

        def job(name, kind, cron, status, deleted, c):
            nonlocal jid
            jid += 1
            self.add("admin_job", id=jid, job_name=name, job_kind=kind, cron_str=cron,
                     status=status, job_uuid=self.h("adminjob", jid)[:24],
                     creation_time=c, update_time=self.after(c, 3600), deleted=deleted,
                     revision=int(c.timestamp()), status_code=3 if status in ("finished", "error",
                                                                             "stopped") else 0)
        c0 = self.when(DATA_START, DATA_START + dt.timedelta(days=30))
        job("IMAGE_GC", "Periodic", '{"type":"Weekly","cron":"0 0 0 * * 0"}', "scheduled", True, c0)
        job("IMAGE_GC", "Periodic", '{"type":"Daily","cron":"0 0 3 * * *"}',
            "pending" if self.edge else "scheduled", False, self.after(c0))
        job("IMAGE_SCAN_ALL", "Periodic", '{"type":"Custom","cron":"0 0 1 * * 6"}', "scheduled",
            False, self.after(c0))
        job("IMAGE_SCAN_ALL", "Periodic", '{"type":"none"}', "pending", True, self.after(c0))
        for i in range(self.n(15, 0.5)):
            st = self.r.choice(["finished"] * 5 + ["error", "stopped", "running", "pending",
                                                   "scheduled", "canceled"])
            job("IMAGE_GC", "Generic", self.r.choice([None, '{"type":"Manual"}']), st,
                self.r.random() < 0.1, self.when())
        for i in range(self.n(4, 0.5)):
            job("IMAGE_SCAN_ALL", "Generic", None, self.r.choice(["finished", "error"]), False,
                self.when())

    def gen_notifications(self):
        nid = 0
        njid = 0
        old_types = ["pushImage", "pullImage", "deleteImage", "uploadChart", "downloadChart",
                     "deleteChart", "scanningFailed", "scanningCompleted"]
        for p in self.live_projects:
            if self.r.random() > 0.3:
                continue
            nid += 1
            c = self.after(p["created"])
            name = self.r.choice(["", "webhook", f"{p['name'][:20]}-hook", "slack"])
            if self.edge and nid == 1:
                name = "ウェブフック-ü"
            targets = [{"type": "http", "address": f"https://hooks.example.com/{self.h('hook', nid)[:8]}",
                        "auth_header": self.r.choice(["", "Bearer xyz"]),
                        "skip_cert_verify": self.r.random() < 0.5}]
            self.add("notification_policy", id=nid, name=self.maybe_null(name), project_id=p["project_id"],
                     enabled=self.r.random() < 0.8,
                     description=self.maybe_null(self.r.choice(["", "notify CI"])),
                     targets=json.dumps(targets),
                     event_types=json.dumps(self.r.sample(old_types, self.r.randint(1, 8))),
                     creator=self.r.choice(["admin", self.r.choice(self.live_users)["username"]]),
                     creation_time=c, update_time=self.after(c))
            for k in range(self.r.randint(0, 6)):
                njid += 1
                et = self.r.choice(old_types + (["projectQuota"] if self.edge else []))
                t = self.after(c, 86400 * 100)
                detail = {"type": et, "occur_at": int(t.timestamp()), "operator": "admin",
                          "event_data": {"resources": [{"digest": self.digest("nj", njid),
                                                        "tag": "latest",
                                                        "resource_url": "harbor.example.com/x:latest"}],
                                         "repository": {"name": "x", "namespace": p["name"]}}}
                self.add("notification_job", id=njid, policy_id=nid,
                         status=self.r.choice(["finished", "finished", "error", "pending", "running"]),
                         event_type=et, notify_type="http", job_detail=json.dumps(detail),
                         job_uuid=self.h("nj", njid)[:24], creation_time=t, update_time=self.after(t, 60))

    def gen_robots(self):
        rid = 0
        for p in self.live_projects:
            for k in range(self.r.choice([0, 0, 1, 1, 2, 3])):
                rid += 1
                c = self.after(p["created"])
                name = f"robot${self.r.choice(['ci', 'pusher', 'puller', 'deploy', 'scanner'])}-{rid}"
                if self.edge and rid == 1:
                    name = "robot$ロボット-ü"
                self.add("robot", id=rid, name=name,
                         description=self.maybe_null(self.r.choice(["", "CI pipeline", "read only"])),
                         project_id=p["project_id"],
                         expiresat=self.maybe_null(int((c + dt.timedelta(days=30)).timestamp()), 0.5),
                         disabled=self.r.random() < 0.1, creation_time=c, update_time=c,
                         visible=self.r.random() > 0.1)

    def gen_cve_whitelists(self):
        wid = 0
        wid += 1
        self.add("cve_whitelist", id=wid, project_id=0, creation_time=DATA_START,
                 update_time=DATA_START, expires_at=None,
                 items=json.dumps([{"cve_id": "CVE-2019-5021"}, {"cve_id": "CVE-2018-12886"}]))
        for p in self.live_projects:
            if p["project_id"] == 1 and not self.edge:
                continue             # library gets its empty allowlist from 2.2.0
            if self.r.random() < 0.25 or (self.edge and p["project_id"] == 1):
                wid += 1
                c = self.after(p["created"])
                self.add("cve_whitelist", id=wid, project_id=p["project_id"], creation_time=c,
                         update_time=c,
                         expires_at=self.maybe_null(int((c + dt.timedelta(days=90)).timestamp())),
                         items=json.dumps([{"cve_id": f"CVE-2020-{self.r.randint(1000, 9999)}"}
                                           for _ in range(self.r.randint(0, 3))]))

    def gen_immutable_rules(self):
        iid = 0
        for p in self.live_projects:
            if self.r.random() > 0.25:
                continue
            for k in range(self.r.randint(1, 2)):
                iid += 1
                pattern = self.r.choice(["v*", "release-*", "**", "{1,2}.*"]) + ("" if k == 0 else f"-{k}")
                rule = {"id": 0, "priority": 0, "disabled": False, "action": "immutable",
                        "template": "immutable_template",
                        "tag_selectors": [{"kind": "doublestar", "decoration": "matches",
                                           "pattern": pattern}],
                        "scope_selectors": {"repository": [{"kind": "doublestar",
                                                            "decoration": "repoMatches",
                                                            "pattern": "**"}]}}
                self.add("immutable_tag_rule", id=iid, project_id=p["project_id"],
                         tag_filter=json.dumps(rule), disabled=self.r.random() < 0.2,
                         creation_time=self.after(p["created"]))

    def gen_job_logs(self):
        for i in range(1, self.n(12, 0.5) + 1):
            c = self.when()
            lines = [f"{c.isoformat()}Z [INFO] [/jobservice/job/impl/gc/gc.go:{100 + i}]: "
                     f"GC step {k}" for k in range(self.r.randint(1, 6))]
            self.add("job_log", log_id=i, job_uuid=self.h("joblog", i)[:24], creation_time=c,
                     content="\n".join(lines) + "\n")

    # -- output ------------------------------------------------------------
    def sql(self) -> str:
        out = ["-- Harbor v1.10 seed data (generated by seed_harbor.py; seed=%d scale=%g profile=%s%s)"
               % (self.seed, self.scale, "edge" if self.edge else "normal",
                  " inventory" if self.inv else ""),
               "SET client_encoding = 'UTF8';", "SET standard_conforming_strings = on;",
               "BEGIN;",
               "-- keep the update_time triggers from stamping now() on the rows we adjust",
               "SET LOCAL session_replication_role = replica;"]
        out += self.updates
        order = ["properties", "harbor_user", "oidc_user", "user_group", "project", "project_metadata",
                 "project_member", "harbor_label", "repository", "blob", "artifact", "artifact_blob",
                 "project_blob", "harbor_resource_label", "access_log", "quota", "quota_usage",
                 "scanner_registration", "scan_report", "registry", "replication_policy",
                 "replication_schedule_job", "replication_execution", "replication_task",
                 "schedule", "retention_policy", "retention_execution", "retention_task",
                 "admin_job", "notification_policy", "notification_job", "robot", "cve_whitelist",
                 "immutable_tag_rule", "job_log"]
        for t in order:
            rows = self.rows.get(t, [])
            if not rows:
                continue
            cols = self.cols[t]
            out.append("COPY public.%s (%s) FROM stdin;" % (t, ", ".join(cols)))
            for r in rows:
                out.append("\t".join(copy_value(r[c]) for c in cols))
            out.append("\\.")
        # sequences follow the data (as after normal operation)
        out.append("""DO $$
DECLARE r record; m bigint;
BEGIN
  FOR r IN SELECT c.relname AS tbl, a.attname AS col, pg_get_serial_sequence(c.relname, a.attname) AS seq
           FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
             AND pg_get_serial_sequence(c.relname, a.attname) IS NOT NULL
  LOOP
    EXECUTE format('SELECT max(%I) FROM %I', r.col, r.tbl) INTO m;
    IF m IS NOT NULL THEN PERFORM setval(r.seq, m, true); END IF;
  END LOOP;
END $$;""")
        out.append("COMMIT;")
        out.append("ANALYZE;")
        return "\n".join(out) + "\n"


def copy_value(v) -> str:
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, (dt.datetime, dt.time)):
        return v.isoformat(sep=" ") if isinstance(v, dt.datetime) else v.isoformat()
    s = str(v)
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def load_inventory(arg: str):
    if arg == "none":
        return None
    path = DEFAULT_INVENTORY if arg == "auto" else arg
    if not os.path.exists(path):
        if arg != "auto":
            raise SystemExit(f"inventory not found: {path}")
        return None
    with open(path) as f:
        return json.load(f)


def generate(seed=1, scale=1.0, profile="normal", inventory="auto") -> str:
    inv = load_inventory(inventory) if isinstance(inventory, str) else inventory
    return Gen(seed, scale, profile, inv).build().sql()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--profile", choices=["normal", "edge"], default="normal")
    ap.add_argument("--inventory", default="auto")
    ap.add_argument("--out", help="write data-only SQL here ('-' for stdout)")
    a = ap.parse_args(argv)
    if not a.out:
        a.out = "-"
    if a.out:
        s = generate(a.seed, a.scale, a.profile, a.inventory)
        if a.out == "-":
            sys.stdout.write(s)
        else:
            with open(a.out, "w") as f:
                f.write(s)


if __name__ == "__main__":
    main()
