"""Evaluation: metrics, evaluation protocols, batched full ranking and statistics.

What is masked and dropped is explicit: every task ranks all candidate items with each user's
training (and at test time validation) items masked before top-k; a user the model cannot score
counts as 0, never dropped; cold items stay in the ranking unless a protocol says otherwise.

The comparison runner and its reports live one layer up, in :mod:`kgrec.experiment`; positives
and splits live in :mod:`kgrec.data` and are re-exported here (``from kgrec.eval import
positives, make_split`` keeps working).
"""

from kgrec._topk import break_ties, topk_masked

# re-exported from kgrec.data, one import line each (no second copy of its name list)
# isort: off
from kgrec.data import PROTOCOLS, Positives, Split, make_split, positives, split_frame
from kgrec.data import cold_item_split, cold_user_split, random_split, temporal_split
from kgrec.data import recbole_split_counts

# isort: on
from kgrec.eval._metrics import (
    MRR,
    NDCG,
    ColdShare,
    Coverage,
    Hit,
    Metric,
    Precision,
    RankedBatch,
    Recall,
    default_metrics,
    parse_metric,
)
from kgrec.eval._protocol import Protocol, build_protocol, cold_items_task
from kgrec.eval._rank import EvalResult, RankingTask, evaluate
from kgrec.eval._stats import Interval, PairedTest, bootstrap_ci, paired_test

__all__ = [
    "MRR",
    "NDCG",
    "PROTOCOLS",
    "ColdShare",
    "Coverage",
    "EvalResult",
    "Hit",
    "Interval",
    "Metric",
    "PairedTest",
    "Positives",
    "Precision",
    "Protocol",
    "RankedBatch",
    "RankingTask",
    "Recall",
    "Split",
    "bootstrap_ci",
    "break_ties",
    "build_protocol",
    "cold_item_split",
    "cold_items_task",
    "cold_user_split",
    "default_metrics",
    "evaluate",
    "make_split",
    "paired_test",
    "parse_metric",
    "positives",
    "random_split",
    "recbole_split_counts",
    "split_frame",
    "temporal_split",
    "topk_masked",
]
