"""Math verifier throughput: rlvr's `math` verifier vs direct math_verify calls, side by side.

MATH-500 gold answers against built 1-2k character responses (reasoning text + final \\boxed{answer}),
half right and half wrong. Two group sizes: 2 responses per gold (the least favourable case for gold
caching), and 8 per gold, as in a GRPO group with n=8 samples per prompt (the headline number).
Baseline: `math_verify.verify(parse(gold), parse(response))` in this process. Ours: `get("math").verify`
with extraction=answer_is and require_evaluated, reject_hedged off (math_verify's defaults, so the labels must agree 100%).
Both run single-threaded; ours blocks while its child process works, so both use about one core.
Writes benchmarks/results/verifier_throughput.json.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "datasets" / "math" / "test_math500.json"
OUT = ROOT / "benchmarks" / "results" / "verifier_throughput.json"

FILLER = [
    "First, let us restate the problem in our own words and identify what is being asked.",
    "We can simplify the expression step by step, keeping track of every term.",
    "Note that $a^2 - b^2 = (a-b)(a+b)$, which lets us factor the numerator.",
    "Substituting $x = 2$ gives $3x + 1 = 7$, consistent with the earlier computation.",
    "Checking the boundary cases carefully, none of them violates the constraint.",
    "By symmetry, the two remaining cases contribute equally, so we double the count.",
    "Let me double-check the arithmetic: $12 \\cdot 7 = 84$ and $84 - 4 = 80$.",
    "Therefore the quantity we want follows directly from the relation derived above.",
]


def build_response(rng: random.Random, answer: str) -> str:
    parts: list[str] = []
    target = rng.randint(1000, 2000)
    while sum(len(p) + 1 for p in parts) < target:
        parts.append(rng.choice(FILLER))
    return " ".join(parts) + f" Hence the result is $\\boxed{{{answer}}}$."


def wrong_answer(answer: str) -> str:
    stripped = answer.strip()
    if stripped.lstrip("-").isdigit():
        return str(int(stripped) + 1)
    return f"{stripped}+1"


def make_pairs(
    seed: int = 0, per_gold: int = 2, start: int = 0, stop: int | None = None
) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = json.loads(DATA.read_text())[start:stop]
    pairs = []
    for row in rows:
        gold = "$" + row["answer"] + "$"
        for j in range(per_gold):
            answer = row["answer"] if j % 2 == 0 else wrong_answer(row["answer"])
            pairs.append((gold, build_response(rng, answer)))
    return pairs


def measure(pairs: list[tuple[str, str]], verifier: object) -> dict[str, object]:
    from math_verify import parse, verify

    start = time.perf_counter()
    direct = [bool(verify(parse(g), parse(r))) for g, r in pairs]
    direct_s = time.perf_counter() - start
    start = time.perf_counter()
    parity = {"extraction": "answer_is", "require_evaluated": False, "reject_hedged": False}
    ours = [verifier.verify(r, g, **parity) for g, r in pairs]  # type: ignore[attr-defined]
    ours_s = time.perf_counter() - start
    agree = sum(o.correct == d for o, d in zip(ours, direct, strict=True))
    return {
        "checks": len(pairs),
        "right_fraction_by_direct": sum(direct) / len(direct),
        "direct_math_verify_per_s": len(pairs) / direct_s,
        "rlvr_per_s": len(pairs) / ours_s,
        "speedup": direct_s / ours_s,
        "label_agreement": agree / len(pairs),
        "fast_path_fraction": sum(o.reason == "fast path" for o in ours) / len(pairs),
        "mismatches": [
            (g, r[-80:], d) for (g, r), o, d in zip(pairs, ours, direct, strict=True) if o.correct != d
        ][:5],
    }


def main() -> None:
    from rlvr.verifiers import get
    from rlvr.verifiers.math_compat import apply

    apply()  # the same latex2sympy fix our child process uses, so both sides parse percents alike
    verifier = get("math")
    verifier.verify("\\boxed{1}", "1")  # start the child process (start-up is not a per-check cost)
    # Separate problems for the two group sizes, so the second run starts with few cached golds.
    two = measure(make_pairs(0, per_gold=2, stop=250), verifier)
    eight = measure(make_pairs(1, per_gold=8, start=250), verifier)
    pairs = make_pairs(0, per_gold=2)

    # Latency of a batch with 5% pathological inputs (sequential, 2 s hard timeout per check).
    rng = random.Random(1)
    bad = [r"\boxed{9^{9^{9^9}}}", r"\boxed{(10^{10})!}", "\\boxed{" + "{" * 3000 + "1" + "}" * 3000 + "}"]
    batch = [(g, r) for g, r in rng.sample(pairs, 95)] + [("$3$", rng.choice(bad)) for _ in range(5)]
    rng.shuffle(batch)
    start = time.perf_counter()
    statuses = [verifier.verify(r, g, extraction="answer_is", timeout_s=2).status.value for g, r in batch]
    patho_s = time.perf_counter() - start

    result = {
        "group_of_8_per_gold": eight,
        "two_per_gold": two,
        "speedup": eight["speedup"],
        "target_speedup": 2.0,
        "pathological_batch": {
            "size": len(batch),
            "pathological": 5,
            "timeout_s": 2,
            "latency_s": patho_s,
            "statuses": {s: statuses.count(s) for s in set(statuses)},
        },
        "cores": "both single-threaded (one core each)",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    for name, r in (("8 per gold (GRPO group)", eight), ("2 per gold", two)):
        print(f"{name}: speedup {r['speedup']:.2f}x, label agreement {r['label_agreement']:.2%}")
    assert eight["label_agreement"] == 1.0 and two["label_agreement"] == 1.0, (
        "labels disagree with math_verify"
    )


if __name__ == "__main__":
    main()
