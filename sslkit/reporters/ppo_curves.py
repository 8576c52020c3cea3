"""``ppo_curves.png``: reward, KL and the KL coefficient of a PPO stage over its steps."""
from __future__ import annotations

from ..objectives.ppo import PPO
from ..plots import pyplot
from ..registry import register
from .base import Reporter, RunContext


@register("reporters", "ppo_curves")
class PPOCurves(Reporter):
    """Draws, from the trainer's history, the reward per response (and the monitor score, on its own
    axis), KL(policy || reference) per response (with the adaptive controller's target) and beta against
    the PPO step, for the first ``ppo`` objective of the run, into ``ppo_curves.png``."""

    needs = (PPO, "is ppo")

    def report(self, run: RunContext) -> dict:
        name, obj = self.objective(run)
        recs = [r for r in run.history if f"{name}/reward" in r]
        if run.run_dir is None or not recs:
            return {}
        plt = pyplot()
        steps = [r["step"] for r in recs]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
        axes[0].plot(steps, [r[f"{name}/reward"] for r in recs], c="C0")
        axes[0].set_ylabel("reward (optimised)", color="C0")
        if f"{name}/monitor_score" in recs[0]:  # its own scale: a reward model's units are arbitrary
            twin = axes[0].twinx()
            twin.plot(steps, [r[f"{name}/monitor_score"] for r in recs], c="C1")
            twin.set_ylabel("monitor score (not optimised)", color="C1")
        axes[0].set_title("reward per response")
        axes[1].plot(steps, [r[f"{name}/kl"] for r in recs])
        if obj.kl.target is not None:
            axes[1].axhline(obj.kl.target, ls="--", c="grey", label="target")
            axes[1].legend()
        axes[1].set_title("KL(policy || reference) per response")
        axes[2].plot(steps, [r[f"{name}/kl_coef"] for r in recs])
        axes[2].set_title("KL coefficient beta")
        for ax in axes:
            ax.set_xlabel("PPO step")
        fig.tight_layout()
        fig.savefig(run.file("ppo_curves.png"), dpi=90)
        plt.close(fig)
        return {}
