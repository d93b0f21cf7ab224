"""Off-policy importance weights on a synthetic batch with known behaviour log-probs."""

from __future__ import annotations

import math

import pytest
import torch

from rlvr.learner.off_policy import importance_weights

pytestmark = pytest.mark.unit


def _batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    old = torch.log(torch.tensor([[0.5, 0.2, 0.9], [0.3, 0.3, 0.3]]))
    behaviour = torch.log(torch.tensor([[0.5, 0.05, 0.3], [0.6, 0.3, 0.1]]))
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    return old, behaviour, mask


def test_tis_truncates_the_ratio_pi_old_over_behaviour() -> None:
    old, beh, mask = _batch()
    w, m = importance_weights(old, beh, mask, "tis", cap=2.0)
    assert w is not None
    expected = torch.tensor([[1.0, 2.0, 2.0], [0.5, 1.0, 0.0]])  # 4 and 3 truncated at 2; masked -> 0
    torch.testing.assert_close(w, expected)
    assert not w.requires_grad
    ratios = [1.0, 4.0, 3.0, 0.5, 1.0]
    assert m["offpolicy/is_weight_mean"] == pytest.approx(sum(ratios) / 5)
    assert m["offpolicy/is_weight_max"] == pytest.approx(4.0)
    assert m["offpolicy/above_cap_frac"] == pytest.approx(2 / 5)
    diffs = [abs(math.log(r)) for r in ratios]
    assert m["offpolicy/abs_logprob_diff"] == pytest.approx(sum(diffs) / 5)


def test_decoupled_masks_tokens_above_the_cap() -> None:
    old, beh, mask = _batch()
    w, _ = importance_weights(old, beh, mask, "decoupled", cap=3.5)
    assert w is not None
    torch.testing.assert_close(w, torch.tensor([[1.0, 0.0, 3.0], [0.5, 1.0, 0.0]]))


def test_none_gives_no_weight_but_still_reports_the_mismatch() -> None:
    old, beh, mask = _batch()
    w, m = importance_weights(old, beh, mask, "none", cap=2.0)
    assert w is None and m["offpolicy/is_weight_max"] == pytest.approx(4.0)


def test_on_policy_batch_has_unit_weights() -> None:
    old, _, mask = _batch()
    w, m = importance_weights(old, old.clone(), mask, "tis", cap=2.0)
    assert w is not None
    torch.testing.assert_close(w, mask)
    assert m["offpolicy/abs_logprob_diff"] == 0.0


def test_unknown_mode_is_refused() -> None:
    old, beh, mask = _batch()
    with pytest.raises(ValueError, match="learner.off_policy"):
        importance_weights(old, beh, mask, "bogus", 2.0)
