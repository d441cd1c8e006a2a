"""harbor.yml: migrate the operator's own file from 1.9.0 ... to any later release, and read it.

Public API (``TARGET``, the default target, is versions.TARGET: the newest release of the whole
upgrade; any release of ``steps.RELEASES`` may be named):

- ``migrate_file(input_path, output_path=None, target=TARGET) -> MigrationResult``
  writes the result (in place with a ``.bak`` of the original, or to ``output_path``);
- ``plan_migration(input_path, target=TARGET) -> MigrationResult`` writes nothing;
- ``read_harbor_yml(path) -> HarborConfig`` a read-only view of any supported release.

All raise harbor_upgrade.errors.HarborUpgradeError subclasses for the operator:
InvalidInput / ValidationFailed (exit 2), UnsupportedVersion (exit 3).
"""
from __future__ import annotations

from .model import ConfigProblem, validate
from .runner import MigrationResult, migrate_file, plan_migration
from .view import Components, DatabaseConfig, HarborConfig, RedisConfig, StorageConfig, read_harbor_yml

__all__ = [
    "migrate_file", "plan_migration", "read_harbor_yml", "MigrationResult", "HarborConfig",
    "StorageConfig", "DatabaseConfig", "RedisConfig", "Components", "ConfigProblem", "validate",
]
