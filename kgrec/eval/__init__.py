"""Evaluation: splits, protocols, metrics, batched full ranking, statistics, runner and reports.

What is masked and dropped is explicit: every task ranks all candidate items with each user's
training (and at test time validation) items masked before top-k; a user the model cannot score
counts as 0, never dropped; cold items stay in the ranking unless a protocol says otherwise.
"""

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
from kgrec.eval._positives import Positives, positives
from kgrec.eval._protocol import Protocol, build_protocol, cold_items_task
from kgrec.eval._rank import EvalResult, RankingTask, break_ties, evaluate, topk_masked
from kgrec.eval._report import plot, summary_table, to_json, to_markdown, write_report
from kgrec.eval._runner import CompareOptions, Comparison, compare, seeds_from
from kgrec.eval._split import PROTOCOLS, Split, split_frame
from kgrec.eval._splits import (
    cold_item_split,
    cold_user_split,
    make_split,
    random_split,
    recbole_split_counts,
    temporal_split,
)
from kgrec.eval._stats import Interval, PairedTest, bootstrap_ci, paired_test

__all__ = [
    "MRR",
    "NDCG",
    "PROTOCOLS",
    "ColdShare",
    "CompareOptions",
    "Comparison",
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
    "compare",
    "default_metrics",
    "evaluate",
    "make_split",
    "paired_test",
    "parse_metric",
    "plot",
    "positives",
    "random_split",
    "recbole_split_counts",
    "seeds_from",
    "split_frame",
    "summary_table",
    "temporal_split",
    "to_json",
    "to_markdown",
    "topk_masked",
    "write_report",
]
