"""Harbor 2.7.0 (schema 100): job queues can be paused.

Adds ``job_queue_status`` (one row per paused or resumed job type), lets replication
policies copy blobs in chunks (for databases that skipped 2.6.2) and, in 2.7's copy of
the file, deletes artifact blob links whose artifact digest has no blob row (2.8 moved
that to 0110; doing it here too changes nothing on the way).
Scale: the clean-up is an anti-join over all of artifact_blob.
"""
from __future__ import annotations

from ..probes import has_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql
from .common import ARTIFACT_BLOB_WITHOUT_BLOB

V100 = SchemaFile(100, (
    sql("replication_policy: column copy_by_chunk (when 2.6.2 did not add it)",
        "ALTER TABLE replication_policy ADD COLUMN IF NOT EXISTS copy_by_chunk boolean"),
    sql("job_queue_status: new table (paused job queues)", """
        CREATE TABLE IF NOT EXISTS job_queue_status (
            id SERIAL NOT NULL PRIMARY KEY,
            job_type varchar(256) NOT NULL,
            paused boolean NOT NULL DEFAULT false,
            update_time timestamp with time zone NOT NULL DEFAULT CURRENT_TIMESTAMP,
            UNIQUE (job_type))"""),
    ARTIFACT_BLOB_WITHOUT_BLOB,
))

STEP = ReleaseStep(
    "2.7.0", (V100,),
    harbor_db=(HarborDb("2.7.0", 13),),
    markers=((100, (has_table("job_queue_status"),)),),
    at_start=("harbor-core 2.7.3/2.7.4 create the GIN index idx_task_extra_attrs_report_uuids at start "
              "(later releases have it in 0111/0120)",),
)
