"""Free-form config maps accept new keys from the command line without Hydra's `+` (docs/GENERATORS.md uses
this form)."""

from __future__ import annotations

import pytest

import rlvr
from rlvr.errors import RlvrUserError

pytestmark = pytest.mark.unit


def test_open_maps_take_new_keys_without_plus() -> None:
    cfg = rlvr.load_config(
        [
            "generator.engine_kwargs.enforce_eager=false",
            "cluster.learner_resources.gpu_node=1",
            "algorithm.params.clip_eps=0.3",
        ]
    )
    assert cfg.generator.engine_kwargs == {"enforce_eager": False}
    assert cfg.cluster.learner_resources == {"gpu_node": 1.0}
    assert cfg.algorithm.params["clip_eps"] == 0.3
    # The `+` form keeps working.
    assert rlvr.load_config(["+generator.engine_kwargs.seed=3"]).generator.engine_kwargs == {"seed": 3}


def test_a_typo_outside_the_open_maps_is_still_an_error() -> None:
    with pytest.raises(RlvrUserError, match="generator"):
        rlvr.load_config(["generator.engine_kwarg.enforce_eager=false"])
