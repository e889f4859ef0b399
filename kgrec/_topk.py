"""Top-k with masking and random tie-breaking on score tensors: below every package.

The models (``Recommender.recommend``) and the evaluation (:func:`kgrec.eval.evaluate`) rank
with the same function, so a served top-k and an evaluated one cannot differ.
"""

from __future__ import annotations

import torch


def break_ties(scores: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``scores`` (float32) as float64 plus a random jitter below half a float32 ulp.

    Distinct float32 scores keep their order (their gap is at least one ulp of the lower one)
    while equal scores are put in a random order, independently per user and item. Breaking
    ties by item index instead is not neutral: index order follows the source file, which in
    ml-100k puts popular items first, so a model that scores many items equally (all zeros for
    cold items) would look as good as popularity. Infinite scores stay as they are.
    """
    s32 = scores.to(torch.float32)
    ulp = (torch.nextafter(s32, torch.full_like(s32, torch.inf)) - s32).to(torch.float64)
    jitter = torch.rand(s32.shape, generator=generator).to(torch.float64) * 0.49 * ulp
    out = s32.to(torch.float64)
    finite = torch.isfinite(out)
    return torch.where(finite, out + torch.nan_to_num(jitter, nan=0.0, posinf=0.0), out)


def _masked_scores(
    scores: torch.Tensor,
    mask: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None,
    candidates: torch.Tensor | None,
) -> torch.Tensor:
    """float32 copy of ``scores`` with NaN, masked and non-candidate entries at ``-inf``.

    ``mask`` is a dense boolean ``(B, n)`` tensor or ``(rows, cols)`` index tensors (cheaper:
    touches only the masked entries). One copy, then in-place passes."""
    s = scores.detach().to(torch.float32)
    s = s.clone() if s.data_ptr() == scores.data_ptr() else s
    torch.nan_to_num_(s, nan=-torch.inf, posinf=torch.inf, neginf=-torch.inf)
    if isinstance(mask, tuple):
        if mask[0].numel():
            s[mask[0], mask[1]] = -torch.inf
    elif mask is not None:
        s.masked_fill_(mask, -torch.inf)
    if candidates is not None:
        s.masked_fill_(~candidates.unsqueeze(0), -torch.inf)
    return s


def topk_masked(
    scores: torch.Tensor,
    k: int,
    *,
    mask: torch.Tensor | tuple[torch.Tensor, torch.Tensor] | None = None,
    candidates: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` item indices of ``scores`` (B, n) after setting masked / non-candidate items and
    NaNs to ``-inf``. Returns ``(items, valid)`` where ``valid`` marks slots with a finite score.
    With a ``generator``, tied scores are ordered at random (:func:`break_ties`); without, ties
    are left to ``torch.topk``.

    Tie-breaking costs no extra pass over the full matrix: a float32 top-``2k`` window is taken
    first; where the ``k``-th score is strictly above the window's last one, every item tied with
    any of the top ``k`` lies inside the window, so jittering the window and re-sorting it gives
    exactly the ranking that jittering all items would. Only rows whose ties run past the window
    (e.g. a model that scores everything 0) fall back to jittering their full row.
    """
    s = _masked_scores(scores, mask, candidates)
    n = s.shape[1]
    k = min(k, n)
    if generator is None or k == 0:
        vals, idx = torch.topk(s, k, dim=1, sorted=True)
        return idx, torch.isfinite(vals)
    w = min(n, 2 * k + 8)
    wv, wi = torch.topk(s, w, dim=1, sorted=True)
    jit = break_ties(wv, generator)
    kth = wv[:, k - 1]
    if w < n:
        # ties past the window (a finite k-th score equal to the window's last one)
        spill = torch.isfinite(kth) & (wv[:, -1] == kth)
    else:
        spill = torch.zeros_like(kth, dtype=torch.bool)
    order = torch.argsort(jit, dim=1, descending=True)[:, :k]
    idx = wi.gather(1, order)
    vals = wv.gather(1, order)
    rows = torch.nonzero(spill).flatten()
    if rows.numel():
        full = break_ties(s[rows], generator)
        fv, fi = torch.topk(full, k, dim=1, sorted=True)
        idx[rows] = fi
        vals[rows] = fv.to(vals.dtype)
    return idx, torch.isfinite(vals)
