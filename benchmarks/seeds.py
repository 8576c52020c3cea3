"""The seed protocol shared by the accuracy benchmarks (semi, weak, contrastive, generative).

Seeds 0-2 are the *tuning* seeds: recipes and hyper-parameters are chosen by looking at them
only. Seeds 3-9 are *held-out*: their mean +- std is the headline. Every seed draws its own
train/test split, labeled rows, initialisation and noise, and every method of a seed's row sees
that same split, so a per-seed comparison is paired.

    from seeds import SeedTable, add_seed_args, setup_threads

    args = add_seed_args(argparse.ArgumentParser()).parse_args()
    setup_threads(args.threads)
    table = SeedTable("digits, test accuracy", ours=["sslkit"])
    table.add(seed, "sslkit", 0.97); table.add(seed, "LabelSpreading(knn)", 0.95)
    print(table.markdown())
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
from typing import Callable, Iterable, Optional, Sequence

TUNING = (0, 1, 2)
DEFAULT_SEEDS = tuple(range(10))


def parse_seeds(text: str) -> list[int]:
    """``"0-9"``, ``"3,5,7"`` or ``"0-2,5"`` -> a sorted list of distinct (non-negative) seeds."""
    seeds: set = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            seeds.update(range(int(lo), int(hi) + 1))
        else:
            seeds.add(int(part))
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return sorted(seeds)


def add_seed_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``--seeds`` (default 0-9; ``--seeds 0`` is the quick mode, and the default under ``SSLKIT_SMOKE=1``,
    where the tutorials' tests run the benchmarks only to see that they run) and ``--threads`` (default 1)."""
    smoke = os.environ.get("SSLKIT_SMOKE") == "1"
    parser.add_argument("--seeds", type=parse_seeds, default=[0] if smoke else list(DEFAULT_SEEDS),
                        help="seeds to run, e.g. 0-9 (default), 0-2 (tuning only), 0 (quick)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads, also passed as trainer.threads (1: these small models gain "
                             "nothing from more, and a shared machine slows badly with oversubscribed threads)")
    return parser


def setup_threads(threads: int) -> None:
    """Fix torch's CPU threads so a seed's run is reproducible for a given thread count."""
    import torch

    torch.set_num_threads(threads)


def kind(seed: int) -> str:
    return "tuning" if seed in TUNING else "held-out"


def mean_std(values: Sequence[float], digits: int = 4) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


class SeedTable:
    """One score per (seed, method), printed as a per-seed table plus summary rows.

    title: what the score is. ours: the sslkit method names (the others are baselines).
    higher_is_better: direction of the score (False for distances). digits: decimals printed.

    Summary rows: the tuning seeds' mean (seeds 0-2), the held-out mean +- std (the other seeds,
    the headline), and for each sslkit method the number of held-out seeds on which it beats every
    baseline, and for each baseline the number on which the first sslkit method beats it.
    """

    def __init__(self, title: str, ours: Iterable[str], higher_is_better: bool = True, digits: int = 4):
        self.title, self.ours = title, list(ours)
        self.higher_is_better, self.digits = higher_is_better, digits
        self.scores: dict = {}  # method -> {seed: score}

    def add(self, seed: int, method: str, score: float) -> None:
        self.scores.setdefault(method, {})[seed] = float(score)

    @property
    def methods(self) -> list[str]:
        """sslkit methods first, then the baselines in the order they were added."""
        return [m for m in self.ours if m in self.scores] + [m for m in self.scores if m not in self.ours]

    @property
    def baselines(self) -> list[str]:
        return [m for m in self.scores if m not in self.ours]

    def seeds(self, which: Optional[str] = None) -> list[int]:
        seeds = sorted({s for per in self.scores.values() for s in per})
        return [s for s in seeds if which is None or kind(s) == which]

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    def values(self, method: str, which: Optional[str] = None) -> list[float]:
        per = self.scores.get(method, {})
        return [per[s] for s in self.seeds(which) if s in per]

    def wins(self, method: str, against: Sequence[str], which: str = "held-out") -> tuple[int, int]:
        """``(seeds where method beats every method of against, seeds where all were run)``."""
        won = total = 0
        for s in self.seeds(which):
            if s not in self.scores.get(method, {}) or any(s not in self.scores.get(b, {}) for b in against):
                continue
            total += 1
            won += all(self.better(self.scores[method][s], self.scores[b][s]) for b in against)
        return won, total

    def summary(self, method: str) -> dict:
        """Tuning mean, held-out mean and std, and wins, as numbers (for targets and tests)."""
        tune, held = self.values(method, "tuning"), self.values(method, "held-out")
        against = self.baselines if method in self.ours else [m for m in self.ours[:1] if m in self.scores]
        won, total = self.wins(method, against) if method in self.ours else self._lost(method)
        return {"tuning_mean": statistics.mean(tune) if tune else None,
                "held_out_mean": statistics.mean(held) if held else None,
                "held_out_std": statistics.stdev(held) if len(held) > 1 else None,
                "wins": won, "held_out_seeds": total, "against": against}

    def _lost(self, baseline: str) -> tuple[int, int]:
        """Held-out seeds where the first sslkit method beats ``baseline``."""
        if not self.ours or self.ours[0] not in self.scores:
            return 0, 0
        return self.wins(self.ours[0], [baseline])

    def markdown(self) -> str:
        methods = self.methods
        f = lambda v: f"{v:.{self.digits}f}"  # noqa: E731
        lines = [f"**{self.title}** ({'higher' if self.higher_is_better else 'lower'} is better; seeds 0-2 tuning, "
                 "others held-out)", "",
                 "| seed | split | " + " | ".join(methods) + " |", "|---|---|" + "---|" * len(methods)]
        for s in self.seeds():
            cells = [f(self.scores[m][s]) if s in self.scores[m] else "-" for m in methods]
            lines.append(f"| {s} | {kind(s)} | " + " | ".join(cells) + " |")
        lines += ["", "| method | tuning mean (0-2) | **held-out mean ± std** | wins on held-out seeds |",
                  "|---|---|---|---|"]
        for m in methods:
            tune, held = self.values(m, "tuning"), self.values(m, "held-out")
            won, total = self.summary(m)["wins"], self.summary(m)["held_out_seeds"]
            if m in self.ours:
                w = f"beats every baseline on {won} of {total}"
            elif self.ours and self.ours[0] in self.scores:
                w = f"{self.ours[0]} beats it on {won} of {total}"
            else:
                w = "-"
            lines.append(f"| {m} | {mean_std(tune, self.digits) if tune else '-'} | "
                         f"**{mean_std(held, self.digits)}** | {w if total else '-'} |")
        return "\n".join(lines)


def held_out_verdict(table: SeedTable, method: str, target: float,
                     check: Optional[Callable[[dict], bool]] = None) -> str:
    """One line: the held-out mean against ``target`` (and an optional extra condition)."""
    s = table.summary(method)
    if s["held_out_mean"] is None:
        return f"{method}: no held-out seed run (tuning mean {s['tuning_mean']:.4f}); target {target} not assessed"
    # a tie counts as met; float sums of the same per-seed accuracies may differ in the last bits
    ok = table.better(s["held_out_mean"], target) or math.isclose(s["held_out_mean"], target, abs_tol=1e-9)
    ok = ok and (check(s) if check else True)
    return (f"{method}: held-out mean {s['held_out_mean']:.4f} over {s['held_out_seeds'] or len(table.values(method, 'held-out'))} "
            f"seeds vs target {target:.4f}: {'met' if ok else 'MISSED'}")
