"""Weighted, composable rewards: which verifiers score a row, and how their scores add up.

In: `VerifiersConfig` (per verifier `weight` and `applies_to`; `group_rewards` as name[:weight]), a step's
rows (prompt, sample, group id) and, once the pool has answered, the results of the items this plan asked for.
Out: one combined `VerifierResult` per row and the per-component means `reward/<name>`:

    reward = sum_v w_v * r_v  +  sum_g w_g * g(group)[member]

over the verifiers v that score the row (its primary verifier, the one its data_source names, and every
verifier with `applies_to: all`) and the selected group rewards g. `correct`, `status`, `extracted` and
`reason` stay the primary verifier's: accuracy and pass@K mean "right", never "well formatted".
Pure: no Ray, no I/O. Group-reward functions run where `combine` is called (the controller, in the driver),
so functions registered from a script need no shipping.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rlvr.errors import RlvrUserError, closest
from rlvr.registry import Registry
from rlvr.types import Prompt, Sample, VerifierResult

if TYPE_CHECKING:
    from rlvr.config.schema import VerifiersConfig

Item = tuple[str, str, str, dict[str, Any]]  # (verifier, response, gold, metadata): VerifierPool.verify_batch
Row = tuple[Prompt, Sample, str]  # (prompt, sample, group id): the controller's flat step
REWARD_KEYS = frozenset({"weight", "applies_to"})  # spec keys read here, never passed to a verifier


@dataclass(frozen=True)
class GroupMember:
    """What a group reward sees of one response. `result.reward` is the weighted verifier sum;
    `result.correct` is the primary verifier's verdict."""

    response: str
    num_tokens: int
    result: VerifierResult
    truncated: bool


GroupRewardFn = Callable[[list[GroupMember]], Sequence[float]]
GROUP_REWARDS: Registry[GroupRewardFn] = Registry("group reward", "rlvr.group_rewards")


def register_group_reward(name: str, *, override: bool = False) -> Callable[[GroupRewardFn], GroupRewardFn]:
    """Decorate `fn(group: list[GroupMember]) -> list[float]` (one value per member, in order);
    select it with `verifiers.group_rewards=[name]` or `[name:weight]`."""
    return GROUP_REWARDS.decorator(name, override=override)


def verifier_options(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A verifier spec without the keys that belong to reward composition (the pool's view of a spec)."""
    return {k: v for k, v in spec.items() if k not in REWARD_KEYS}


def parse_group_entry(entry: str) -> tuple[str, float]:
    """'name' -> (name, 1.0); 'name:0.5' -> (name, 0.5)."""
    name, sep, raw = entry.partition(":")
    try:
        weight = float(raw) if sep else 1.0
    except ValueError:
        weight = math.nan
    if not name.strip() or not math.isfinite(weight):
        raise RlvrUserError(f"verifiers.group_rewards: entry {entry!r} is not name or name:<finite weight>")
    return name.strip(), weight


@dataclass(frozen=True)
class RewardPlan:
    weights: dict[str, float]  # verifier -> weight
    everywhere: tuple[str, ...]  # verifiers with applies_to=all, in config order
    group: tuple[tuple[str, float, GroupRewardFn], ...] = ()

    @classmethod
    def from_config(cls, cfg: VerifiersConfig) -> RewardPlan:
        weights: dict[str, float] = {}
        for name, spec in cfg.specs.items():
            if not math.isfinite(spec.weight):
                raise RlvrUserError(
                    f"verifiers.specs.{name}.weight: must be a finite number (got {spec.weight})"
                )
            weights[name] = float(spec.weight)
        everywhere = tuple(n for n, s in cfg.specs.items() if s.applies_to == "all")
        group: list[tuple[str, float, GroupRewardFn]] = []
        for entry in cfg.group_rewards:
            name, weight = parse_group_entry(entry)
            if name in weights:
                raise RlvrUserError(
                    f"verifiers.group_rewards: '{name}' is also a verifier; reward/{name} would mean two things"
                )
            if any(name == g[0] for g in group):
                raise RlvrUserError(f"verifiers.group_rewards: '{name}' is listed twice")
            if name not in GROUP_REWARDS:
                names = GROUP_REWARDS.available()
                raise RlvrUserError(
                    f"verifiers.group_rewards: unknown group reward '{name}'; registered: "
                    f"{', '.join(names) or '(none)'}{closest(name, names)}"
                )
            group.append((name, weight, GROUP_REWARDS.get(name)))
        return cls(weights, everywhere, tuple(group))

    def verifiers_for(self, data_source: str) -> list[str]:
        """The verifiers that score a row: its primary (data_source) first, then the applies_to=all ones."""
        if data_source not in self.weights:
            raise RlvrUserError(
                f"verifiers: rows with data_source '{data_source}' need verifier '{data_source}'; selected: "
                f"{', '.join(self.weights)}; add it with verifiers=[...]"
            )
        return [data_source] + [n for n in self.everywhere if n != data_source]

    def items(self, rows: Sequence[Row]) -> list[Item]:
        """The pool requests for `rows`, row by row, each row's primary verifier first."""
        return [
            (name, s.response_text, p.ground_truth, p.metadata)
            for p, s, _ in rows
            for name in self.verifiers_for(p.data_source)
        ]

    def combine(
        self, rows: Sequence[Row], results: Sequence[VerifierResult]
    ) -> tuple[list[VerifierResult], dict[str, float]]:
        """`results` answer `self.items(rows)` in order. Returns one result per row and `reward/<name>`
        means (a verifier's over the rows it scored, unweighted; a group reward's over all rows)."""
        layout = [self.verifiers_for(p.data_source) for p, _, _ in rows]
        if len(results) != sum(len(names) for names in layout):
            raise ValueError(f"{len(results)} results for {sum(map(len, layout))} items")
        sums: dict[str, list[float]] = {}
        combined: list[VerifierResult] = []
        i = 0
        for names in layout:
            parts = results[i : i + len(names)]
            i += len(names)
            for name, r in zip(names, parts, strict=True):
                sums.setdefault(name, []).append(r.reward)
            total = sum(self.weights[n] * r.reward for n, r in zip(names, parts, strict=True))
            combined.append(dataclasses.replace(parts[0], reward=total))
        if self.group:
            combined = self._apply_group(rows, combined, sums)
        means = {f"reward/{name}": sum(v) / len(v) for name, v in sums.items() if v}
        return combined, means

    def _apply_group(
        self, rows: Sequence[Row], combined: list[VerifierResult], sums: dict[str, list[float]]
    ) -> list[VerifierResult]:
        groups: dict[str, list[int]] = {}
        for j, (_, _, gid) in enumerate(rows):
            groups.setdefault(gid, []).append(j)
        bonus = [0.0] * len(rows)
        for name, weight, fn in self.group:
            values = [0.0] * len(rows)
            for idx in groups.values():
                # Every group reward sees the verifier-only results: the order they are listed in is irrelevant.
                members = [
                    GroupMember(
                        response=rows[j][1].response_text,
                        num_tokens=len(rows[j][1].response_ids),
                        result=combined[j],
                        truncated=rows[j][1].truncated,
                    )
                    for j in idx
                ]
                out = [float(v) for v in fn(members)]
                if len(out) != len(idx):
                    raise RlvrUserError(
                        f"verifiers.group_rewards: '{name}' returned {len(out)} values for a group of {len(idx)}"
                    )
                if not all(math.isfinite(v) for v in out):
                    raise RlvrUserError(f"verifiers.group_rewards: '{name}' returned a non-finite value")
                for j, v in zip(idx, out, strict=True):
                    values[j] = v
            sums[name] = values
            bonus = [b + weight * v for b, v in zip(bonus, values, strict=True)]
        return [dataclasses.replace(r, reward=r.reward + b) for r, b in zip(combined, bonus, strict=True)]
