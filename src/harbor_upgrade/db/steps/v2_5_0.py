"""Harbor 2.5.0 (schema 80), 2.5.2 (81) and 2.5.3 (82): accessories and big vulnerability ids.

2.5.0 turns the retention policies' times of day into timestamps on the day the upgrade
runs, adds ``artifact_accessory`` (signatures and other artifacts attached to a
subject), makes the vulnerability record ids bigint (a rewrite of both vulnerability
tables), indexes tasks by job id, and sets a project's ``public`` flag to false when it
is neither true nor false (2.5's copy of the file; later releases moved that to 0090,
and doing it here too changes nothing on the way). 2.5.2 indexes artifacts by
repository name; 2.5.3 closes Running executions whose tasks all succeeded.
"""
from __future__ import annotations

from ..probes import column_type, has_index, has_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql
from .common import PUBLIC_TRUE_OR_FALSE, REPAIR_EXECUTIONS, id_to_bigint

V80 = SchemaFile(80, (
    sql("retention_policy: create_time and update_time become timestamps (the upgrade's date + the "
        "stored time of day)", """
        ALTER TABLE retention_policy
            ALTER COLUMN create_time TYPE timestamp without time zone USING (current_date + create_time),
            ALTER COLUMN update_time TYPE timestamp without time zone USING (current_date + update_time)"""),
    sql("artifact_accessory: new table (accessories such as signatures and their subject artifact)", """
        CREATE TABLE IF NOT EXISTS artifact_accessory (
            id SERIAL PRIMARY KEY NOT NULL,
            artifact_id bigint,
            subject_artifact_id bigint,
            type varchar(256),
            size bigint,
            digest varchar(1024),
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            FOREIGN KEY (artifact_id) REFERENCES artifact(id),
            FOREIGN KEY (subject_artifact_id) REFERENCES artifact(id),
            CONSTRAINT unique_artifact_accessory UNIQUE (artifact_id, subject_artifact_id))"""),
    id_to_bigint("vulnerability_record"),
    id_to_bigint("report_vulnerability_record"),
    sql("task: index on job_id", "CREATE INDEX IF NOT EXISTS idx_task_job_id ON task (job_id)"),
    PUBLIC_TRUE_OR_FALSE,
))

V81 = SchemaFile(81, (
    sql("artifact: index on repository_name",
        "CREATE INDEX IF NOT EXISTS idx_artifact_repository_name ON artifact (repository_name)"),
))

V82 = SchemaFile(82, (REPAIR_EXECUTIONS,))

STEP = ReleaseStep(
    "2.5.0", (V80, V81, V82),
    harbor_db=(HarborDb("2.5.0", 13, upgrades_from=9),),
    markers=(
        (80, (has_table("artifact_accessory"), column_type("vulnerability_record", "id", "bigint"),
              column_type("retention_policy", "create_time", "timestamp without time zone"))),
        (81, (has_table("artifact_accessory"), has_index("idx_artifact_repository_name"))),
    ),
)
