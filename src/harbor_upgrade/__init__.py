"""harbor-upgrade: upgrade a Harbor installation from v1.10.x-v2.3.x to v2.4.0."""

__version__ = "0.1.0"
