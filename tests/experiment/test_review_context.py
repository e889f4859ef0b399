"""Review text under kgrec's own splits: only the split's training reviews reach the models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def instruments(amazon_dir):
    from kgrec.experiment import ModelContext
    from kgrec.graph import load_spec

    spec = load_spec(REPO / "graphs" / "amazon-instruments.toml", data_path=amazon_dir)
    return ModelContext.from_spec(spec)


def _held_out_reviews_in_item_text(ctx, split) -> int:
    """How many of ``split``'s non-training pairs have their own review among their item's
    review chunks (compared after the chunks' truncation)."""
    from kgrec.text._compose import truncate

    f = ctx.dataset.interactions.frame
    limit = int(ctx.spec.text.max_review_chars)
    texts = ctx.texts()["item"]
    chunks = {str(i): set(r) for i, r in zip(texts.ids, texts.reviews, strict=True)}
    held = split.matrix(1, 2).tocoo()
    pairs = {
        (split.users.id(u), split.items.id(i)) for u, i in zip(held.row, held.col, strict=True)
    }
    own = f["review"].astype(str).str.strip()
    # a review written twice (same text by two users of one item) is not a leak
    twice = own.groupby([f["item"].astype(str), own]).transform("size") > 1
    n = 0
    for u, i, rev, dup in zip(
        f["user"].astype(str), f["item"].astype(str), own, twice, strict=True
    ):
        if (u, i) in pairs and rev and not dup and truncate(rev, limit) in chunks.get(i, ()):
            n += 1
    return n


@pytest.mark.parametrize("protocol", ["random", "cold-user"])
def test_for_split_keeps_held_out_reviews_out_of_text(instruments, protocol):
    from kgrec.data import make_split
    from kgrec.experiment._context import training_rows

    split = make_split(instruments.positives, protocol, seed=7)
    # the dataset's given training reviews include pairs this split holds out (the leak)
    assert _held_out_reviews_in_item_text(instruments, split) > 100
    ctx = instruments.for_split(split)
    assert ctx is not instruments and ctx.cache == {}
    assert _held_out_reviews_in_item_text(ctx, split) == 0
    mask = training_rows(ctx.dataset, split)
    assert mask.sum() == split.train_matrix().nnz  # every training pair is one review row
    users = ctx.texts().get("user")
    if users is not None and protocol == "cold-user":  # held-out users have no text at all
        held = np.flatnonzero(split.user_role > 0)
        by_id = dict(zip(users.ids, users.reviews, strict=True))
        assert all(not by_id.get(split.users.id(int(u)), ()) for u in held)


def test_for_split_is_identity_without_reviews(ml100k_dir):
    from kgrec.data import make_split
    from kgrec.experiment import ModelContext
    from kgrec.graph import load_spec

    ctx = ModelContext.from_spec(load_spec(REPO / "graphs" / "movielens-100k.toml"))
    assert not ctx.uses_reviews
    assert ctx.for_split(make_split(ctx.positives, "random", seed=1)) is ctx
