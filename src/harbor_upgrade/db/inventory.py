"""What the database lists of the registry's content, for the checks around an upgrade."""
from __future__ import annotations

from .connection import columns, connect


def artifact_digests(dsn: str) -> list[tuple[str, str]]:
    """(repository, digest) of every artifact row, in the 1.10 layout (repo) or the 2.x one."""
    with connect(dsn) as conn:
        repo = "repository_name" if "repository_name" in columns(conn, "artifact") else "repo"
        return [(r[0], r[1]) for r in conn.execute(f"SELECT DISTINCT {repo}, digest FROM artifact ORDER BY 1, 2")]
