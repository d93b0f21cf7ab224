"""vLLM's token ranks on CPU come from the eager count, with the same values and no compilation."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.unit


def test_eager_token_ranks_match_brute_force_without_compiling() -> None:
    pytest.importorskip("vllm")
    import torch._dynamo.utils as dynamo_utils
    from vllm.v1.sample.sampler import Sampler

    from rlvr.generator.vllm_cpu import count_at_least, use_eager_token_ranks

    use_eager_token_ranks()
    g = torch.Generator().manual_seed(0)
    logprobs = torch.randn(5, 300, generator=g).log_softmax(-1)
    logprobs[3, 10] = logprobs[3, 11] = logprobs[3].max() + 1  # a tie at the top: id 11 counts as rank 2
    tokens = torch.tensor([0, 7, 299, 11, 42])
    frames = dynamo_utils.counters["frames"]["total"]
    out = Sampler.gather_logprobs(logprobs, 2, tokens)
    assert dynamo_utils.counters["frames"]["total"] == frames  # nothing went through torch.compile
    brute = [int((logprobs[i] >= logprobs[i, t]).sum()) for i, t in enumerate(tokens.tolist())]
    assert out.selected_token_ranks.tolist() == brute
    assert brute[3] == 2
    assert torch.equal(out.logprobs[:, 0], logprobs.gather(-1, tokens[:, None])[:, 0])
    assert count_at_least(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[2.0]])).tolist() == [2]
