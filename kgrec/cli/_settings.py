"""Model settings from the command line: ``--set key=value`` and ``--config FILE.toml``.

A key names a field of the model's config (``HybridConfig.dim``) or of its
:class:`~kgrec.train.TrainingOptions` (``patience``, ``lr``); ``model.KEY`` / ``training.KEY``
say which explicitly, ``MODEL.KEY`` (``hybrid.dim``) limits a setting to one model of a
comparison. Values are typed by the field (``true``/``false``, numbers, ``none``) and validated
by the config itself, so a bad value is an error naming the key. A TOML file holds the same keys:
top-level ``key = value``, a ``[training]`` or ``[model]`` table, or a ``[MODEL]`` table.
"""

from __future__ import annotations

import dataclasses
import tomllib
import typing
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from kgrec.errors import SpecError

SCOPES = ("model", "training")


def _hints(cls: type) -> dict[str, Any]:
    import sys

    return typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))


def _fields(cls: type) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls)}


def coerce(cls: type, key: str, value: Any, *, where: str) -> Any:
    """``value`` (a string from ``--set`` or a TOML value) as the type of ``cls.key``."""
    typ = _hints(cls)[key]
    args = typing.get_args(typ)
    optional = type(None) in args
    base = next((a for a in args if a is not type(None)), typ) if args else typ
    if isinstance(value, str) and optional and value.strip().lower() in ("none", "null", ""):
        return None
    try:
        if base is bool:
            if isinstance(value, bool):
                return value
            v = str(value).strip().lower()
            if v in ("true", "yes", "1", "on"):
                return True
            if v in ("false", "no", "0", "off"):
                return False
            raise ValueError("expected true or false")
        if base is int:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError("expected an integer")
            if isinstance(value, str):
                try:
                    return int(value.strip())
                except ValueError:
                    raise ValueError(f"expected an integer for {cls.__name__}.{key}") from None
            return int(value)
        if base is float:
            if isinstance(value, bool):
                raise ValueError("expected a number")
            try:
                return float(value)
            except ValueError:
                raise ValueError(f"expected a number for {cls.__name__}.{key}") from None
        if base is str:
            return str(value)
    except ValueError as exc:
        raise SpecError(f"{value!r}: {exc}", key=where) from None
    return value


def _split(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"expected key=value, got {item!r}", key="--set")
    return key.strip(), value.strip()


def _flatten(obj: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out = []
    for k, v in obj.items():
        if isinstance(v, dict):
            out += _flatten(v, f"{prefix}{k}.")
        else:
            out.append((f"{prefix}{k}", v))
    return out


def read_config_file(path: str | Path) -> list[tuple[str, Any]]:
    """``(dotted key, value)`` pairs of a settings TOML file."""
    p = Path(path)
    try:
        obj = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError("settings file not found", spec=p) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"invalid TOML: {exc}", spec=p) from None
    return _flatten(obj)


@dataclasses.dataclass(frozen=True)
class ModelSettings:
    """Parsed settings: ``(model or None, scope or None, key, raw value, origin)`` entries."""

    entries: tuple[tuple[str | None, str | None, str, Any, str], ...] = ()

    @classmethod
    def parse(
        cls, sets: Sequence[str] = (), config: str | Path | None = None, *, models: Iterable[str]
    ) -> ModelSettings:
        known_models = set(models)
        pairs: list[tuple[str, Any, str]] = []
        if config is not None:
            pairs += [(k, v, f"{config}: {k}") for k, v in read_config_file(config)]
        for item in sets:  # --set wins over the file (it comes later)
            k, v = _split(item)
            pairs.append((k, v, f"--set {k}"))
        entries = []
        for key, value, origin in pairs:
            parts = key.split(".")
            model = scope = None
            if len(parts) > 1 and parts[0] in known_models:
                model, parts = parts[0], parts[1:]
            if len(parts) > 1 and parts[0] in SCOPES:
                scope, parts = parts[0], parts[1:]
            if len(parts) != 1:
                raise SpecError(
                    f"cannot read key {key!r}: use KEY, model.KEY, training.KEY or MODEL.KEY "
                    f"(MODEL one of {sorted(known_models)})",
                    key=origin,
                )
            entries.append((model, scope, parts[0], value, origin))
        return cls(tuple(entries))

    def __bool__(self) -> bool:
        return bool(self.entries)

    def resolve(self, name: str, config_class: type, options_class: type | None):
        """``(config overrides, training overrides)`` for model ``name``, typed; keys that no
        selected model knows are errors (see :meth:`check`)."""
        cfg: dict[str, Any] = {}
        train: dict[str, Any] = {}
        cfields = _fields(config_class)
        tfields = _fields(options_class) if options_class is not None else {}
        for model, scope, key, value, origin in self.entries:
            if model is not None and model != name:
                continue
            if scope in (None, "model") and key in cfields:
                cfg[key] = coerce(config_class, key, value, where=origin)
            elif scope in (None, "training") and key in tfields:
                train[key] = coerce(options_class, key, value, where=origin)
        return cfg, train

    def check(self, classes: Mapping[str, tuple[type, type | None]]) -> None:
        """Every entry must apply to at least one of the selected models."""
        for model, scope, key, _, origin in self.entries:
            targets = [model] if model is not None else list(classes)
            ok = False
            for name in targets:
                if name not in classes:
                    continue
                cc, oc = classes[name]
                if scope in (None, "model") and key in _fields(cc):
                    ok = True
                if scope in (None, "training") and oc is not None and key in _fields(oc):
                    ok = True
            if not ok:
                known = sorted(
                    {k for n in targets if n in classes for k in _known(*classes[n], scope)}
                )
                raise SpecError(
                    f"unknown setting {key!r} for {', '.join(targets)}; known: {known} "
                    "(see --help-config)",
                    key=origin,
                )

    def validate(self, classes: Mapping[str, tuple[type, type | None]]) -> None:
        """Every value typed and checked by its config (``dim=-3``, ``epochs=abc``) for each of
        the selected models, on the default config: errors before any data is read."""
        from kgrec.models import MODELS

        for name, (cc, oc) in classes.items():
            cfg, train = self.resolve(name, cc, oc)
            if cfg:
                cc.from_dict({**cc().to_dict(), **cfg})
            if train:
                MODELS[name].default_options.replace(**train)


def _known(cc: type, oc: type | None, scope: str | None) -> list[str]:
    out = list(_fields(cc)) if scope in (None, "model") else []
    if oc is not None and scope in (None, "training"):
        out += list(_fields(oc))
    return out


def model_classes(names: Iterable[str]) -> dict[str, tuple[type, type | None]]:
    """``name -> (config class, TrainingOptions or None)`` for registered models."""
    from kgrec.models import MODELS
    from kgrec.train import TrainingOptions

    out = {}
    for n in names:
        klass = MODELS[n]
        trained = isinstance(getattr(klass, "default_options", None), TrainingOptions)
        out[n] = (klass.config_class, TrainingOptions if trained else None)
    return out


def settings_factory(settings: ModelSettings):
    """A comparison ``model_factory``: :func:`make_model`, then the settings applied."""
    import inspect

    from kgrec.experiment import make_model
    from kgrec.models import MODELS

    def factory(name: str, seed: int, options, context=None):
        model = make_model(name, seed, options, context=context)
        if not settings:
            return model
        klass = MODELS[name]
        cc, oc = model_classes([name])[name]
        cfg, train = settings.resolve(name, cc, oc)
        if train:
            model.options = model.options.replace(**train)
        if cfg:
            config = cc.from_dict({**model.config.to_dict(), **cfg})
            fc = getattr(klass, "from_context", None)
            if fc is not None and "config" in inspect.signature(fc).parameters:
                # rebuilt: the config can change which inputs are built (user_links, kg, text)
                model = klass.from_context(
                    context, options=getattr(model, "options", None), config=config
                )
            else:
                model.config = config
        return model

    return factory


def help_config(name: str) -> str:
    """Every setting of model ``name``: key, type, default (what ``--help-config`` prints)."""
    from kgrec.models import MODELS

    cc, oc = model_classes([name])[name]
    klass = MODELS[name]
    lines = [f"settings of {name} ({klass.__name__}); give them as --set KEY=VALUE or in a "
             "--config FILE.toml", "", f"model ({cc.__name__}):"]  # fmt: skip
    lines += _rows(cc, cc())
    if oc is not None:
        lines += ["", "training (TrainingOptions; this model's defaults):"]
        lines += _rows(oc, klass.default_options)
    doc = (cc.__doc__ or "").strip()
    if doc:
        lines += ["", "about the model settings:", *("  " + ln.strip() for ln in doc.splitlines())]
    return "\n".join(lines)


def _rows(cls: type, obj: Any) -> list[str]:
    hints = _hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        t = hints[f.name]
        tname = getattr(t, "__name__", None) or str(t).replace("typing.", "")
        rows.append(f"  {f.name:<20} {tname:<14} default {getattr(obj, f.name)!r}")
    return rows
