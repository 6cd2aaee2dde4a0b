"""The SQL store (see base.py). Attributes load lazily so CLI commands that need no database start fast."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsmon.store.base import Store, metadata

__all__ = ["Store", "metadata"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from newsmon.store import base

        return getattr(base, name)
    raise AttributeError(name)
