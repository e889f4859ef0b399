"""Model factories: a recommender by its CLI short name, with a run's seed / epoch / device
overrides, built from a :class:`~kgrec.experiment.ModelContext` when it takes side information."""

from __future__ import annotations

from typing import Any

from kgrec.experiment._options import CompareOptions


def make_model(name: str, seed: int, options: CompareOptions, *, context: Any | None = None):
    """Build the recommender ``name`` with the comparison's seed / epoch / device overrides.

    ``context`` (a :class:`~kgrec.experiment.ModelContext`: dataset, positives, graph spec) is
    handed to models that need side information (a :class:`~kgrec.models.ContextFactory`: those
    built from a context)."""
    from kgrec.models import MODELS, ContextFactory
    from kgrec.train import TrainingOptions

    klass = MODELS[name]
    defaults = getattr(klass, "default_options", None)
    if isinstance(defaults, TrainingOptions):
        changes: dict[str, Any] = {"seed": int(seed), "device": options.device}
        if options.epochs is not None:
            changes["epochs"] = options.epochs
        if options.max_seconds is not None:
            changes["max_seconds"] = options.max_seconds
        opts = defaults.replace(**changes)
        fields = getattr(klass.config_class, "__dataclass_fields__", {})
        if isinstance(klass, ContextFactory) and "text_finetune" in fields:
            cfg = klass.config_class(
                text_finetune=options.text_finetune, text_init_from=options.init_text_from or ""
            )
            return klass.from_context(context, options=opts, config=cfg)
        if isinstance(klass, ContextFactory):
            return klass.from_context(context, options=opts)
        return klass(options=opts)
    if isinstance(klass, ContextFactory):
        return klass.from_context(context)
    return klass()


def model_weights(model: Any) -> str:
    """How ``model`` reads interaction weights: its config's ``weights`` (``"none"`` for
    models without one)."""
    return str(getattr(getattr(model, "config", None), "weights", "none"))
