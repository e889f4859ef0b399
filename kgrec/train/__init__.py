"""Training: frozen options, the single epoch loop (early stopping, checkpoints, resume), BPR batches."""

from kgrec.train._fits import (
    Choice,
    FitBudget,
    FitCache,
    FitLog,
    FitPart,
    fit_shared,
    matrix_fingerprint,
)
from kgrec.train._loop import (
    CHECKPOINT_NAME,
    BatchSampler,
    TrainResult,
    seed_everything,
    train_loop,
)
from kgrec.train._options import TrainingOptions
from kgrec.train._progress import EpochReport, epoch_reporter
from kgrec.train._sampling import BPRSampler, PairBatch

__all__ = [
    "CHECKPOINT_NAME",
    "BPRSampler",
    "BatchSampler",
    "Choice",
    "EpochReport",
    "FitBudget",
    "FitCache",
    "FitLog",
    "FitPart",
    "PairBatch",
    "TrainResult",
    "TrainingOptions",
    "epoch_reporter",
    "fit_shared",
    "matrix_fingerprint",
    "seed_everything",
    "train_loop",
]
