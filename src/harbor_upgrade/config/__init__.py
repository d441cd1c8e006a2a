"""harbor.yml: migrate the operator's own file from 1.9.0 ... 2.3.x to 2.4.0, and read it.

Public API:

- ``migrate_file(input_path, output_path=None, target="2.4.0") -> MigrationResult``
  writes the result (in place with a ``.bak`` of the original, or to ``output_path``);
- ``plan_migration(input_path, target="2.4.0") -> MigrationResult`` writes nothing;
- ``read_harbor_yml(path) -> HarborConfig`` a read-only view of any supported release.

All raise harbor_upgrade.errors.HarborUpgradeError subclasses for the operator:
InvalidInput / ValidationFailed (exit 2), UnsupportedVersion (exit 3).
"""
from __future__ import annotations

from .model import Problem, validate
from .runner import MigrationResult, migrate_file, plan_migration
from .view import Components, DatabaseConfig, HarborConfig, RedisConfig, StorageConfig, read_harbor_yml

__all__ = [
    "migrate_file", "plan_migration", "read_harbor_yml", "MigrationResult", "HarborConfig",
    "StorageConfig", "DatabaseConfig", "RedisConfig", "Components", "Problem", "validate",
]
