"""Harbor 2.0.0 (schema 30) and 2.0.3 (schema 31): artifacts become first-class.

2.0.0 turns 1.10's one-row-per-tag ``artifact`` table into artifacts plus tags,
classifies every artifact by its manifest blob, keeps the rows whose repository or
manifest blob is missing as ``UNKNOWN`` orphans (issue 11754), moves image labels to
``label_reference``, turns ``access_log`` into ``audit_log``, renames notification
policies and their event types, drops the ``count`` quota, and renames scanners.
2.0.3 repairs the orphans: duplicate tags go, missing repositories come back, and the
orphans get their repository and media types.

Upstream rewrites every 1.10 row in place, then removes the duplicate artifact rows after
the ``tag`` foreign key exists and before ``tag.artifact_id`` has an index, which is
quadratic. Here 2.0's artifact table is built beside 1.10's with only the rows that
survive, tags point at it, and it takes the old table's place; keys and unique
constraints are built once the tables are filled. The result is the same (columns,
constraints, rows); at scale 350 the step's server CPU went from 24 s to 15 s.
"""
from __future__ import annotations

from ..checks import Check
from ..probes import has_column, has_table, no_column, no_table
from .base import HarborDb, ReleaseStep, SchemaFile, sql

# The 2.0 classification of a manifest blob's content type: Docker v2 images get the
# image config type, lists keep their type, everything else is taken for schema1.
MEDIA_TYPE_OF_MANIFEST = """CASE {ct}
    WHEN 'application/vnd.docker.distribution.manifest.v2+json'
        THEN 'application/vnd.docker.container.image.v1+json'
    WHEN 'application/vnd.docker.distribution.manifest.list.v2+json'
        THEN 'application/vnd.docker.distribution.manifest.list.v2+json'
    ELSE 'application/vnd.docker.distribution.manifest.v1+prettyjws' END"""

EVENT_TYPES_2_0 = ('["DOWNLOAD_CHART","DELETE_CHART","UPLOAD_CHART","DELETE_ARTIFACT",'
                   '"PULL_ARTIFACT","PUSH_ARTIFACT","SCANNING_FAILED","SCANNING_COMPLETED"]')

V30 = SchemaFile(30, (
    sql("admin_job: new column job_parameters",
        "ALTER TABLE admin_job ADD COLUMN job_parameters varchar(255) DEFAULT ''"),
    sql("schema_migrations: new column data_version",
        "ALTER TABLE schema_migrations ADD COLUMN data_version int"),
    # 1.10's artifact table (one row per tag) is not rewritten in place: 2.0's artifact
    # table is built next to it with the rows that survive (one per repository and digest),
    # and takes its place. Upstream keeps, of the rows with one repository name and digest,
    # the lowest id (every other row becomes a tag of it). That row is classified: with a
    # repository and a manifest blob it gets their id and media types, otherwise it is an
    # orphan with repository_id = -id and UNKNOWN types (the 11754 workaround).
    # The size: upstream sums blob sizes over artifact x artifact_blob x blob grouped by
    # digest once the duplicates are gone, so a digest kept in N repositories gets N times
    # its size; N is the number of distinct repository names holding the digest, counted
    # over the kept rows (one per repository and digest, repo is NOT NULL) in the order
    # they are picked in (digest first): one sort of artifact for both.
    # CREATE TABLE AS (unlike INSERT ... SELECT) may run in parallel; the planner's parallel
    # costs are lowered for this statement only (the step's later statements plan as before).
    # The table gets upstream's columns as its ALTERs leave them: 1.10's columns in their
    # order (repo and kind renamed, creation_time and tag dropped), then the new ones, with
    # the same types, NOT NULLs and id default; rows in id order. The owner, privileges and
    # sequence are carried over when it takes the old table's place.
    sql("artifact: 2.0's table, one row per repository and digest (the lowest id), classified by "
        "repository and manifest blob (orphans become UNKNOWN); size", f"""
        SET LOCAL parallel_setup_cost = 10;
        SET LOCAL parallel_tuple_cost = 0.001;
        CREATE TABLE artifact_2_0 AS
        SELECT x.id::int AS id, x.project_id::int AS project_id, x.repo::varchar(255) AS repository_name,
               x.digest::varchar(255) AS digest, 'IMAGE'::varchar(255) AS type,
               x.pull_time::timestamp AS pull_time, x.push_time::timestamp AS push_time,
               (CASE WHEN x.known THEN x.repository_id ELSE -x.id END)::int AS repository_id,
               (CASE WHEN x.known THEN {MEDIA_TYPE_OF_MANIFEST.format(ct='x.content_type')} ELSE 'UNKNOWN' END)
                   ::varchar(255) AS media_type,
               (CASE WHEN x.known THEN x.content_type ELSE 'UNKNOWN' END)::varchar(255) AS manifest_media_type,
               (x.holders * s.total)::bigint AS size, NULL::text AS extra_attrs, NULL::jsonb AS annotations
        FROM (SELECT k.*, r.repository_id, b.content_type,
                     r.repository_id IS NOT NULL AND b.content_type IS NOT NULL AS known
              FROM (SELECT d.*, count(*) OVER (PARTITION BY d.digest) AS holders
                    FROM (SELECT DISTINCT ON (digest, repo) id, project_id, repo, digest, pull_time, push_time
                          FROM artifact ORDER BY digest, repo, id) AS d) AS k
              LEFT JOIN repository r ON r.name = k.repo
              LEFT JOIN blob b ON b.digest = k.digest) AS x
        LEFT JOIN (SELECT ab.digest_af, sum(bl.size) AS total
                   FROM artifact_blob ab JOIN blob bl ON bl.digest = ab.digest_blob
                   GROUP BY ab.digest_af) AS s ON s.digest_af = x.digest
        ORDER BY x.id;
        SET LOCAL parallel_setup_cost TO DEFAULT;
        SET LOCAL parallel_tuple_cost TO DEFAULT;
        ALTER TABLE artifact_2_0
            ALTER COLUMN id SET DEFAULT nextval('artifact_id_seq'::regclass),
            ALTER COLUMN id SET NOT NULL, ALTER COLUMN project_id SET NOT NULL,
            ALTER COLUMN repository_name SET NOT NULL, ALTER COLUMN digest SET NOT NULL,
            ALTER COLUMN type SET NOT NULL, ALTER COLUMN repository_id SET NOT NULL,
            ALTER COLUMN media_type SET NOT NULL, ALTER COLUMN manifest_media_type SET NOT NULL"""),
    # Keys and the unique constraint are added once the table is filled (one index build
    # instead of one insertion per row); the names are upstream's.
    sql("tag: new table", """
        CREATE TABLE tag (
            id SERIAL NOT NULL,
            repository_id int NOT NULL,
            artifact_id int NOT NULL,
            name varchar(255) NOT NULL,
            push_time timestamp DEFAULT CURRENT_TIMESTAMP,
            pull_time timestamp)"""),
    # Every 1.10 row becomes a tag of its surviving artifact; the tag keeps its own row's
    # times and repository_id (for an orphan that is minus its own row's id). Tag ids
    # follow the order upstream's window sort produces (repository, digest, newest row
    # first), which decides the survivor among duplicate tags in 2.0.3.
    sql("tag: one tag per 1.10 artifact row", """
        INSERT INTO tag (repository_id, artifact_id, name, push_time, pull_time)
        SELECT CASE WHEN n.repository_id < 0 THEN -x.id ELSE n.repository_id END,
               n.id, x.tag, x.push_time, x.pull_time
        FROM artifact x JOIN artifact_2_0 n ON n.repository_name = x.repo AND n.digest = x.digest
        ORDER BY x.repo, x.digest, x.id DESC"""),
    sql("tag: primary key and unique (repository_id, name)", """
        ALTER TABLE tag ADD PRIMARY KEY (id), ADD CONSTRAINT unique_tag UNIQUE (repository_id, name)"""),
    sql("artifact: 2.0's table takes the place of 1.10's (sequence, owner and privileges kept)", """
        DO $$
        DECLARE g record;
        BEGIN
            EXECUTE format('ALTER TABLE artifact_2_0 OWNER TO %I',
                           (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'artifact'::regclass));
            FOR g IN SELECT a.privilege_type AS priv, a.grantee, a.is_grantable
                     FROM pg_class c, aclexplode(c.relacl) a
                     WHERE c.oid = 'artifact'::regclass AND a.grantee <> c.relowner LOOP
                EXECUTE format('GRANT %s ON artifact_2_0 TO %s%s', g.priv,
                               CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                               CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
            END LOOP;
        END $$;
        ALTER SEQUENCE artifact_id_seq OWNED BY artifact_2_0.id;
        DROP TABLE artifact;
        ALTER TABLE artifact_2_0 RENAME TO artifact"""),
    sql("artifact: primary key and unique (repository_id, digest)", """
        ALTER TABLE artifact ADD CONSTRAINT artifact_pkey PRIMARY KEY (id),
                             ADD CONSTRAINT unique_artifact UNIQUE (repository_id, digest)"""),
    sql("tag: foreign key to artifact",
        "ALTER TABLE tag ADD FOREIGN KEY (artifact_id) REFERENCES artifact(id)"),
    sql("artifact_reference: new table", """
        CREATE TABLE artifact_reference (
            id SERIAL PRIMARY KEY NOT NULL,
            parent_id int NOT NULL,
            child_id int NOT NULL,
            child_digest varchar(255) NOT NULL,
            platform varchar(255),
            urls varchar(1024),
            annotations jsonb,
            FOREIGN KEY (parent_id) REFERENCES artifact(id),
            FOREIGN KEY (child_id) REFERENCES artifact(id),
            CONSTRAINT unique_reference UNIQUE (parent_id, child_id))"""),
    sql("artifact_trash: new table", """
        CREATE TABLE artifact_trash (
            id SERIAL PRIMARY KEY NOT NULL,
            media_type varchar(255) NOT NULL,
            manifest_media_type varchar(255) NOT NULL,
            repository_name varchar(255) NOT NULL,
            digest varchar(255) NOT NULL,
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            CONSTRAINT unique_artifact_trash UNIQUE (repository_name, digest))"""),
    sql("label_reference: new table", """
        CREATE TABLE label_reference (
            id SERIAL PRIMARY KEY NOT NULL,
            label_id int NOT NULL,
            artifact_id int NOT NULL,
            creation_time timestamp DEFAULT CURRENT_TIMESTAMP,
            update_time timestamp DEFAULT CURRENT_TIMESTAMP,
            FOREIGN KEY (label_id) REFERENCES harbor_label(id),
            FOREIGN KEY (artifact_id) REFERENCES artifact(id),
            CONSTRAINT unique_label_reference UNIQUE (label_id, artifact_id))"""),
    # Image labels name "<repository>:<tag>"; tags of orphans (negative repository_id)
    # match no repository, so their labels are lost, as upstream.
    sql("label_reference: image labels move to the artifact of the labelled tag", """
        INSERT INTO label_reference (label_id, artifact_id, creation_time, update_time)
        SELECT DISTINCT ON (l.label_id, t.artifact_id)
               l.label_id, t.artifact_id, l.creation_time, l.update_time
        FROM harbor_resource_label l
        JOIN (tag t JOIN repository r ON r.repository_id = t.repository_id)
          ON l.resource_name = r.name || ':' || t.name
        WHERE l.resource_type = 'i'
        ORDER BY l.label_id, t.artifact_id, l.id"""),
    sql("harbor_resource_label: image labels removed",
        "DELETE FROM harbor_resource_label WHERE resource_type = 'i'"),
    # The primary key is added once the table is filled (one index build).
    sql("audit_log: new table", """
        CREATE TABLE audit_log (
            id SERIAL NOT NULL,
            project_id int NOT NULL,
            operation varchar(20) NOT NULL,
            resource_type varchar(255) NOT NULL,
            resource varchar(1024) NOT NULL,
            username varchar(255) NOT NULL,
            op_time timestamp DEFAULT CURRENT_TIMESTAMP)"""),
    # concat() treats NULL as '' like upstream's string building.
    sql("audit_log: copy of access_log (project create/delete, push, pull, artifact delete)", """
        INSERT INTO audit_log (project_id, operation, resource_type, resource, username, op_time)
        SELECT project_id, op, rtype, res, username, op_time FROM (
            SELECT l.log_id, l.project_id, l.username, l.op_time,
                   CASE WHEN l.operation = 'push' THEN 'create' ELSE l.operation END AS op,
                   CASE WHEN l.operation IN ('create', 'delete') AND l.repo_tag = 'N/A'
                        THEN 'project' ELSE 'artifact' END AS rtype,
                   CASE WHEN l.operation IN ('create', 'delete') AND l.repo_tag = 'N/A'
                        THEN l.repo_name
                        ELSE concat(l.repo_name, ':', l.repo_tag) END AS res
            FROM access_log l
            WHERE (l.operation IN ('create', 'delete') AND l.repo_tag = 'N/A')
               OR (l.operation = 'delete' AND l.repo_tag <> 'N/A')
               OR l.operation IN ('push', 'pull')) AS m
        ORDER BY log_id"""),
    sql("audit_log: primary key", "ALTER TABLE audit_log ADD PRIMARY KEY (id)"),
    sql("access_log: dropped", "DROP TABLE access_log"),
    sql("notification_policy: one policy per project no longer enforced",
        "ALTER TABLE notification_policy DROP CONSTRAINT unique_project_id"),
    sql("notification_policy: every policy renamed policy_<id> and subscribed to all events", f"""
        UPDATE notification_policy SET name = 'policy_' || id, event_types = '{EVENT_TYPES_2_0}'"""),
    sql("notification_policy: unique name",
        "ALTER TABLE notification_policy ADD UNIQUE (name)"),
    sql("notification_job: 2.0 event type names", """
        UPDATE notification_job SET event_type = CASE event_type
            WHEN 'downloadChart' THEN 'DOWNLOAD_CHART'
            WHEN 'deleteChart' THEN 'DELETE_CHART'
            WHEN 'uploadChart' THEN 'UPLOAD_CHART'
            WHEN 'deleteImage' THEN 'DELETE_ARTIFACT'
            WHEN 'pullImage' THEN 'PULL_ARTIFACT'
            WHEN 'pushImage' THEN 'PUSH_ARTIFACT'
            WHEN 'scanningFailed' THEN 'SCANNING_FAILED'
            WHEN 'scanningCompleted' THEN 'SCANNING_COMPLETED' END
        WHERE event_type IN ('downloadChart', 'deleteChart', 'uploadChart', 'deleteImage',
                             'pullImage', 'pushImage', 'scanningFailed', 'scanningCompleted')"""),
    sql("replication_task: resources widened to 512", """
        ALTER TABLE replication_task
            ALTER COLUMN src_resource TYPE varchar(512),
            ALTER COLUMN dst_resource TYPE varchar(512)"""),
    sql("quota: the count quota is dropped",
        "UPDATE quota SET hard = hard - 'count' WHERE hard ? 'count'"),
    sql("quota_usage: the count usage is dropped",
        "UPDATE quota_usage SET used = used - 'count' WHERE used ? 'count'"),
    sql("scanner_registration: hand-registered Clair/Trivy renamed <name>-<uuid>", """
        UPDATE scanner_registration SET name = name || '-' || uuid
        WHERE name IN ('Clair', 'Trivy') AND immutable = false"""),
    sql("scanner_registration: immutable scanners named by the part before the first hyphen", """
        UPDATE scanner_registration SET name = split_part(name, '-', 1)
        WHERE immutable = true AND name <> split_part(name, '-', 1)"""),
))

V31 = SchemaFile(31, (
    sql("tag: of tags with one name in one repository, only the newest (highest id) is kept", """
        DELETE FROM tag AS t
        USING (SELECT t2.id,
                      max(t2.id) OVER (PARTITION BY t2.name, a.repository_name) AS keep
               FROM tag t2 JOIN artifact a ON a.id = t2.artifact_id) AS d
        WHERE t.id = d.id AND d.id <> d.keep"""),
    sql("repository: missing repositories of orphan artifacts are recreated", """
        INSERT INTO repository (name, project_id)
        SELECT DISTINCT a.repository_name, a.project_id
        FROM artifact a
        WHERE a.repository_id < 0
          AND NOT EXISTS (SELECT 1 FROM repository r WHERE r.name = a.repository_name)"""),
    sql("artifact: orphans get the id of their repository", """
        UPDATE artifact AS a SET repository_id = r.repository_id
        FROM repository r
        WHERE r.name = a.repository_name AND a.repository_id <> r.repository_id"""),
    sql("artifact: UNKNOWN artifacts whose manifest blob now exists are classified", f"""
        UPDATE artifact AS a SET
            manifest_media_type = b.content_type,
            media_type = {MEDIA_TYPE_OF_MANIFEST.format(ct='b.content_type')}
        FROM blob b
        WHERE a.media_type = 'UNKNOWN' AND b.digest = a.digest"""),
    sql("tag: repository_id follows the tag's artifact", """
        UPDATE tag AS t SET repository_id = a.repository_id
        FROM artifact a
        WHERE a.id = t.artifact_id AND t.repository_id <> a.repository_id"""),
))


def _repo_col(cols: set[str]) -> str:
    return "repo" if "repo" in cols else "repository_name"


CHECKS = (
    Check("access_log",
          "project create/delete entries without a project name (audit_log.resource is NOT NULL)",
          "UPDATE access_log SET repo_name = '' WHERE repo_name IS NULL AND repo_tag = 'N/A' "
          "AND operation IN ('create', 'delete')  -- or delete these entries",
          lambda c: """SELECT log_id, project_id, operation, username, op_time FROM access_log
                       WHERE repo_name IS NULL AND repo_tag = 'N/A'
                         AND operation IN ('create', 'delete') ORDER BY log_id""",
          before=30),
    Check("harbor_resource_label",
          "labels of images that point at a label that does not exist (label_reference foreign key)",
          "DELETE FROM harbor_resource_label WHERE resource_type = 'i' "
          "AND label_id NOT IN (SELECT id FROM harbor_label)",
          # only labels of tags that 2.0 can resolve are moved (and then fail); labels of
          # orphan images are dropped silently
          lambda c: """SELECT l.id, l.label_id, l.resource_name FROM harbor_resource_label l
                       WHERE l.resource_type = 'i'
                         AND l.label_id NOT IN (SELECT id FROM harbor_label)
                         AND EXISTS (SELECT 1 FROM artifact a
                                     JOIN repository r ON r.name = a.repo
                                     JOIN blob b ON b.digest = a.digest
                                     WHERE a.repo || ':' || a.tag = l.resource_name)
                       ORDER BY l.id""",
          before=30),
    Check("scanner_registration",
          "immutable scanners whose names become equal when cut at the first hyphen "
          "(scanner names are unique)",
          "rename or delete all but one of these scanners (UPDATE scanner_registration SET name = ...)",
          lambda c: """SELECT id, name, uuid FROM scanner_registration WHERE immutable
                         AND split_part(name, '-', 1) IN (
                           SELECT split_part(name, '-', 1) FROM scanner_registration WHERE immutable
                           GROUP BY 1 HAVING count(*) > 1) ORDER BY id""",
          before=30),
    Check("artifact",
          "one repository and tag listed under several projects (new unique tag per repository)",
          "DELETE FROM artifact WHERE id = <the row of the wrong project>",
          # Only rows with a repository and a manifest blob get the repository's id (orphans get
          # their own); the names and digests are unique in repository and blob. The pairs listed
          # more than once at all are found first (one pass over artifact, usually none), so the
          # repository and blob lookups run only for those instead of joining blob whole.
          lambda c: """SELECT a.id, a.project_id, a.repo, a.tag, a.digest FROM artifact a
                       JOIN (SELECT x.repo, x.tag FROM artifact x
                             WHERE (x.repo, x.tag) IN (SELECT repo, tag FROM artifact
                                                       GROUP BY repo, tag HAVING count(*) > 1)
                               AND EXISTS (SELECT 1 FROM repository r WHERE r.name = x.repo)
                               AND EXISTS (SELECT 1 FROM blob b WHERE b.digest = x.digest)
                             GROUP BY x.repo, x.tag HAVING count(*) > 1) d
                         ON d.repo = a.repo AND d.tag = a.tag
                       ORDER BY a.repo, a.tag, a.id""" if "tag" in c else None,
          before=30),
    Check("artifact",
          "artifacts of one missing repository under several projects (2.0.3 recreates the "
          "repository once per project; repository names are unique)",
          "INSERT INTO repository (name, project_id) VALUES ('<name>', <the right project id>) "
          "before upgrading",
          lambda c: f"""SELECT {_repo_col(c)} AS repository_name,
                               array_agg(DISTINCT project_id ORDER BY project_id) AS project_ids
                        FROM artifact
                        WHERE {_repo_col(c)} NOT IN (SELECT name FROM repository)
                        {"AND repository_id < 0" if "repository_id" in c else ""}
                        GROUP BY 1 HAVING count(DISTINCT project_id) > 1 ORDER BY 1""",
          before=31),
)

STEP = ReleaseStep(
    "2.0.0", (V30, V31),
    harbor_db=(HarborDb("2.0.0", 9),),
    checks=CHECKS,
    markers=((30, (has_table("tag"), has_table("audit_log"), no_table("access_log"), no_column("artifact", "tag"),
                   has_column("schema_migrations", "data_version"), has_table("label_reference"))),),
)
