"""The learner's one-parameter-at-a-time bf16 step (rlvr.learner.lean_step) updates exactly as DeepSpeed's
unfused bf16 optimizer does, and needs less memory for it. Runs in a fresh process: DeepSpeed needs a
torch.distributed group (gloo, world 1), which must not leak into the test process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.unit

CHILD = r"""
import json, os, sys, torch, torch.distributed as dist
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[1], RANK="0", WORLD_SIZE="1", LOCAL_RANK="0")
dist.init_process_group("gloo", rank=0, world_size=1)
import deepspeed
deepspeed.ops.__compatible_ops__["deepspeed_shm_comm"] = False
from rlvr.config.schema import LearnerConfig
from rlvr.learner.ds_config import build_optimizer, deepspeed_config, plan_batches
from rlvr.learner.lean_step import use_lean_step

def engine(lean, clip):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(50, 16), torch.nn.Linear(16, 32), torch.nn.Linear(32, 50))
    model.register_parameter("unused", torch.nn.Parameter(torch.ones(7)))  # no gradient: a zero one is used
    lc = LearnerConfig(lr=1e-2, weight_decay=0.1, grad_clip=clip, mini_batch_size=4, micro_batch_size=2)
    plan = plan_batches(lc, 1, 4)
    opt, sched = build_optimizer(model, lc, 10)
    eng, *_ = deepspeed.initialize(model=model, optimizer=opt, lr_scheduler=sched,
                                   config=deepspeed_config(lc, plan, 1, False, bf16=True), dist_init_required=False)
    return eng, (use_lean_step(eng) if lean else False)

def train(eng):
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        for _ in range(2):  # two micro-batches per optimizer step
            x = torch.randint(0, 50, (2, 5), generator=g)
            loss = torch.nn.functional.cross_entropy(eng.module(x).float().flatten(0, 1), x.flatten())
            eng.backward(loss, scale_wrt_gas=False)
            eng.step()
    opt = eng.optimizer
    state = [opt.optimizer.state[p] for group in opt.fp32_groups for p in group]
    return ([p.detach().clone() for group in opt.fp32_groups for p in group],
            [p.detach().clone() for p in eng.module.parameters()],
            [(s["exp_avg"].clone(), s["exp_avg_sq"].clone(), float(s["step"])) for s in state])

out = {}
for clip in (1e-3, 1e3):  # the clip factor applies / never clips
    (a, lean_a), (b, lean_b) = engine(False, clip), engine(True, clip)
    ta, tb = train(a), train(b)
    same = all(torch.equal(x, y) for xs, ys in zip(ta[:2], tb[:2]) for x, y in zip(xs, ys))
    same_state = all(torch.equal(x[0], y[0]) and torch.equal(x[1], y[1]) and x[2] == y[2] for x, y in zip(ta[2], tb[2]))
    moved = max(float((x - y).abs().max()) for x, y in zip(ta[0], [p.detach().float() for p in engine(False, clip)[0].module.parameters()]))
    out[str(clip)] = {"lean": lean_b, "plain": lean_a, "same_weights": same, "same_state": same_state, "moved": moved}
print(json.dumps(out))
"""


def test_lean_step_matches_deepspeeds_bf16_step_bitwise():
    import random

    port = str(random.randint(20000, 40000))
    done = subprocess.run([sys.executable, "-c", CHILD, port], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    res = json.loads(done.stdout.strip().splitlines()[-1])
    for clip, r in res.items():
        assert r["lean"] is True, clip  # installed on the engine that asked for it
        assert r["same_weights"] and r["same_state"], (clip, r)
        assert r["moved"] > 1e-3, (clip, r)  # the steps really trained (equal no-ops would prove nothing)
