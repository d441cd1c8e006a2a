"""Harbor 1.10.0 (from 1.9.0).

- Clair gets its own settings section: ``clair.updaters_interval`` (hours, default 12).
- External Redis gains a database for Clair: ``clair_db_index`` (4).
- The default proxy section lists core, jobservice and clair.
- Harbor's own database: 50 idle / 100 open connections when the file has none.
"""
from __future__ import annotations

from ..document import Document
from ..model import (
    DB_TARGET,
    PATH,
    POOL,
    PORT,
    PROXY_COMPONENTS,
    SIZE,
    Bool,
    Delta,
    F,
    Int,
    OneOf,
    Section,
    SequenceOf,
    Text,
    storage_rule,
)
from . import common

VERSION = "1.10.0"

# The first release of the chain: its delta is the whole model of a 1.10 harbor.yml.
MODEL = Delta(add={
    ("hostname",): F(Text(), True),
    # Harbor's prepare reads an empty http section as port 80, and an https section whose
    # settings are all commented out as no https at all
    ("http",): F(Section({"port": F(PORT, assumed=80)}, empty="no settings; Harbor listens on port 80")),
    ("https",): F(Section({"port": F(PORT, True), "certificate": F(Text(), True), "private_key": F(Text(), True)},
                          empty="no settings (all commented out); Harbor serves HTTP only")),
    ("external_url",): F(Text(nullable=True, pattern=r"https?://\S+", what="a URL like https://reg.example.com")),
    ("harbor_admin_password",): F(Text(), True),
    ("database",): F(Section({"password": F(Text(), True), "max_idle_conns": F(POOL),
                              "max_open_conns": F(POOL)}), True),
    ("data_volume",): F(PATH, True),
    ("storage_service",): F(Section({
        "ca_bundle": F(Text(nullable=True)),
        "redirect": F(Section({"disabled": F(Bool(), True)})),
    }, rule=storage_rule)),
    ("clair",): F(Section({"updaters_interval": F(Int(0, None))})),
    ("jobservice",): F(Section({"max_job_workers": F(Int(1, 10000), True)}), True),
    ("notification",): F(Section({"webhook_job_max_retry": F(Int(0, None), True)}), True),
    ("chart",): F(Section({"absolute_url": F(OneOf("enabled", "disabled"), True)}), True),
    ("log",): F(Section({
        "level": F(OneOf("debug", "info", "warning", "error", "fatal"), True),
        "local": F(Section({"rotate_count": F(Int(0, None), True), "rotate_size": F(SIZE, True),
                            "location": F(PATH, True)}), True),
        "external_endpoint": F(Section({"protocol": F(OneOf("tcp", "udp"), True), "host": F(Text(), True),
                                        "port": F(PORT, True)})),
    }), True),
    ("_version",): F(Text(), True),
    ("external_database",): F(Section({
        "harbor": F(Section({**DB_TARGET, "max_idle_conns": F(POOL), "max_open_conns": F(POOL)}), True),
        "clair": F(Section(DB_TARGET)),
        "notary_signer": F(Section(DB_TARGET)),
        "notary_server": F(Section(DB_TARGET)),
    })),
    ("external_redis",): F(Section({
        "host": F(Text(), True), "port": F(PORT), "password": F(Text(nullable=True)),
        "registry_db_index": F(Int(0, None), assumed=1), "jobservice_db_index": F(Int(0, None), assumed=2),
        "chartmuseum_db_index": F(Int(0, None), assumed=3), "clair_db_index": F(Int(0, None)),
    })),
    ("uaa",): F(Section({"ca_file": F(Text(), True)})),
    ("proxy",): F(Section({
        "http_proxy": F(Text(nullable=True)), "https_proxy": F(Text(nullable=True)),
        "no_proxy": F(Text(nullable=True)),
        "components": F(SequenceOf(OneOf(*PROXY_COMPONENTS, "clair"), nullable=True)),
    })),
})


def apply(doc: Document) -> None:
    common.usual_defaults(doc, database=(50, 100))
    common.clair_section(doc)
    common.redis_indexes(doc, clair=True)
    common.default_proxy(doc, ["core", "jobservice", "clair"])
