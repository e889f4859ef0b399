"""Key and type checks of a spec's tables: each failure is a :class:`SpecError` naming the
spec file and the dotted key (``source.interactions.file``), with the alternatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kgrec.errors import SpecError
from kgrec.graph._spec_types import RESERVED_TYPES


def _check_keys(obj: Mapping[str, Any], allowed: tuple[str, ...], where: str, spec: Any) -> None:
    for k in obj:
        if k not in allowed:
            key = f"{where}.{k}" if where else k
            raise SpecError(f"unknown key; allowed here: {sorted(allowed)}", key=key, spec=spec)


def _get(obj: Mapping[str, Any], key: str, typ: Any, where: str, spec: Any, default: Any = None):
    """``obj[key]`` checked against ``typ`` (a type or tuple); ``default`` when absent."""
    if key not in obj:
        return default
    v = obj[key]
    ok = isinstance(v, typ) and not (isinstance(v, bool) and bool not in _as_tuple(typ))
    if not ok:
        names = "/".join(t.__name__ for t in _as_tuple(typ))
        raise SpecError(
            f"expected {names}, got {type(v).__name__} {v!r}",
            key=f"{where}.{key}" if where else key,
            spec=spec,
        )
    return v


def _as_tuple(t: Any) -> tuple:
    return t if isinstance(t, tuple) else (t,)


def _name(v: Any, key: str, spec: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise SpecError(f"expected a non-empty string, got {v!r}", key=key, spec=spec)
    return v.strip()


def _type_name(v: Any, key: str, spec: Any) -> str:
    name = _name(v, key, spec)
    if name in RESERVED_TYPES:
        raise SpecError(
            f"node type {name!r} is reserved for the graph's own {name}s; name the entity type "
            "something else (e.g. 'genre', 'entity')",
            key=key,
            spec=spec,
        )
    return name


def _table(obj: Mapping[str, Any], key: str, spec: Any, *, required: bool = False) -> dict:
    if key not in obj:
        if required:
            raise SpecError("missing required section", key=key, spec=spec)
        return {}
    v = obj[key]
    if not isinstance(v, dict):
        raise SpecError(f"expected a table ([{key}]), got {type(v).__name__}", key=key, spec=spec)
    return v
