"""The score blend part: z-scored mix, weight chosen on validation, and the hybrid's EASE blend
being the same part (a composed ``ScoreBlend(hybrid, EASE)`` scores as ``cf_blend="ease"``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from kgrec.errors import KgrecError, SpecError
from kgrec.models import EASE, ItemKNN, Popularity, ScoreBlend, ScoreBlendConfig, ScoreMix
from kgrec.models._blend import blend_weights, zscore
from kgrec.testing import synthetic_matrix

from .test_hybrid import FAST, make_hybrid, synthetic_inputs


@pytest.fixture(scope="module")
def data():
    return synthetic_matrix(60, 40, seed=3)


def test_mix_is_the_first_at_zero_and_z_scored_otherwise():
    a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 10.0, 20.0]])
    b = torch.tensor([[3.0, 2.0, 1.0], [5.0, 5.0, 6.0]])
    assert torch.equal(ScoreMix(0.0)(a, b), a)
    half = ScoreMix(0.5)(a, b)
    assert torch.allclose(half, 0.5 * zscore(a) + 0.5 * zscore(b))
    assert torch.allclose(zscore(a).mean(1), torch.zeros(2), atol=1e-6)


def test_weight_chosen_on_validation_ties_to_the_smaller():
    mix = ScoreMix()
    w = mix.choose(lambda: -abs(mix.weight - 0.3), blend_weights(10))
    assert w == pytest.approx(0.3) and len(mix.curve) == 11
    flat = ScoreMix()
    assert flat.choose(lambda: 1.0, blend_weights(4)) == 0.0


def test_blend_of_two_baselines(data):
    seen = []

    def validate(model) -> float:
        seen.append(model.mix_.weight)
        return -abs(model.mix_.weight - 0.7)

    blend = ScoreBlend(Popularity(), ItemKNN()).fit(data, validate=validate)
    assert blend.mix_.weight == pytest.approx(0.7) and seen[:3] == [0.0, 0.1, 0.2]
    users = np.arange(10)
    want = ScoreMix(0.7)(blend.first.score(users), blend.second.score(users))
    assert torch.allclose(blend.score(users), want)
    assert ScoreBlend(Popularity(), ItemKNN()).fit(data).mix_.weight == 0.5  # no callback
    with pytest.raises(KgrecError, match="not saved as one model"):
        blend.save("unused")
    with pytest.raises(SpecError):
        ScoreBlendConfig(steps=0)


def test_composed_blend_scores_as_the_hybrids_own(data):
    """``ScoreBlend(hybrid without blend, EASE)`` = the hybrid with ``cf_blend="ease"``: same
    weight chosen, same scores (the built-in blend is this part)."""
    users = np.arange(60)

    def validate(model) -> float:
        s = model.score(users).numpy()
        return float(np.tanh(s[:, :5]).mean() - np.tanh(s[:, 5:20]).mean())

    opts = FAST.replace(epochs=3)
    own = make_hybrid(synthetic_inputs(), options=opts, cf_blend="ease").fit(
        data, validate=validate
    )
    plain = make_hybrid(synthetic_inputs(), options=opts, cf_blend="none")
    blend = ScoreBlend(plain, EASE()).fit(data, validate=validate)
    assert own.blend_w_ == blend.mix_.weight and own.blend_curve_ == blend.mix_.curve
    assert torch.equal(own.score(users), blend.score(users))
