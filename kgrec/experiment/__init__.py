"""Experiments: everything above the models that turns a spec into measured recommenders.

* :class:`ModelContext` assembles model inputs from a spec (graph build, text encoding, KG links)
  and hands them to model factories (:func:`make_model`);
* :func:`fit_and_evaluate` fits one model on a split and evaluates it on the protocol's tasks:
  ``kgrec train`` calls it once, :func:`compare` once per model and seed;
* :func:`compare` is the comparison runner (``kgrec compare``, the benches), its
  :class:`Comparison` goes into the reports (:func:`write_report`: markdown, JSON, PNG).
"""

from kgrec.experiment._context import ModelContext
from kgrec.experiment._data import data_summary
from kgrec.experiment._factory import make_model, model_weights
from kgrec.experiment._fit import (
    FitEvaluation,
    evaluate_tasks,
    fit_and_evaluate,
    fit_model,
    fit_record,
    sample_users,
    validator,
)
from kgrec.experiment._options import PROTOCOL_SPLITS, CompareOptions, seeds_from
from kgrec.experiment._report import (
    cpu_name,
    environment,
    plot,
    summary_table,
    to_json,
    to_markdown,
    write_report,
)
from kgrec.experiment._report_sections import strict_json
from kgrec.experiment._runner import Comparison, compare, metric_order

__all__ = [
    "PROTOCOL_SPLITS",
    "CompareOptions",
    "Comparison",
    "FitEvaluation",
    "ModelContext",
    "compare",
    "cpu_name",
    "data_summary",
    "environment",
    "evaluate_tasks",
    "fit_and_evaluate",
    "fit_model",
    "fit_record",
    "make_model",
    "metric_order",
    "model_weights",
    "plot",
    "sample_users",
    "seeds_from",
    "strict_json",
    "summary_table",
    "to_json",
    "to_markdown",
    "validator",
    "write_report",
]
