"""The SQL store (see base.py)."""

from newsmon.store.base import Store, metadata

__all__ = ["Store", "metadata"]
