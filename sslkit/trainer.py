"""One training loop for every objective.

Each step draws one batch from every stream the objectives asked for, then steps each player
(``model``, or e.g. ``discriminator`` then ``generator``) with its own optimizer and schedule.
Everything a resumed run needs — weights, optimizer and scheduler state, stream positions,
RNG state, the weight average of ``trainer.ema_decay`` — goes into the checkpoint, so on CPU a
resumed run ends exactly where an uninterrupted one does.
"""
from __future__ import annotations

import contextlib
import json
import math
import signal
import time
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from . import checkpoint, distributed
from .acceleration import accelerate
from .data import DataBundle
from .data.base import labeled_rows
from .data.loader import cache_images, make_batches
from .data.stream import Stream, StreamSpec
from .ema import AveragedWeights, averaged_weights_in, ema_update, warmup_decay
from .errors import ConfigError, Interrupted, TrainingError, did_you_mean
from .model import SSLModel
from .objectives.base import Objective
from .optim.groups import parameter_groups
from .reporters import RunContext, build_reporters
from .schema import build
from .sync_batchnorm import convert_sync_batchnorm
from .text.tokenizers import recorded_tokenizer, refuse_other_tokenizer


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", distributed.world()[1])
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError("trainer.device", f"unknown device '{name}' (use auto, cpu, cuda or cuda:N)") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.device", "CUDA requested but torch.cuda.is_available() is False")
    if device.type == "cuda" and device.index is None:  # each torchrun process its own GPU
        device = torch.device("cuda", distributed.world()[1])
    return device


class Trainer:
    """Runs the loop for an :class:`SSLModel` on a :class:`DataBundle` as configured by ``cfg``
    (the resolved recipe) and writes logs, checkpoints and figures into ``run_dir`` (rank 0)."""

    def __init__(self, cfg: dict, data: DataBundle, model: SSLModel, device: torch.device,
                 run_dir: Optional[Path], extend_to: Optional[int] = None):
        self.cfg, self.tcfg, self.data, self.device = cfg, cfg["trainer"], data, device
        self.run_dir = run_dir
        self.rank, _, self.world = distributed.world()
        self.model = model.to(device)
        if self.tcfg["sync_batchnorm"] and self.world > 1:
            convert_sync_batchnorm(self.model, device)  # before the average below copies the model
        # the average of the weights that evaluation and the saved model use (on the model's device; every
        # DDP rank keeps the same one, as its weights are the same); taken before compiling the encoder
        self.ema = AveragedWeights(self.model) if self.tcfg["ema_decay"] else None
        accelerate(self.model, device, self.tcfg["compile"])
        self.net = self.model
        if self.world > 1:
            multi = len(self.model.players) > 1
            self.net = nn.parallel.DistributedDataParallel(
                self.model, device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=multi)
        self.amp = (self.tcfg["precision"] == "bf16" or (self.tcfg["precision"] == "auto" and device.type == "cuda"))
        if data.info.modality == "image":
            cache_images(data)  # an image folder is decoded once, not every epoch
        self._build_streams(extend_to)
        self._build_optimizers()
        # only objectives that override the no-op hook are called every step
        self._after_step = [o for o in self.model.objectives if type(o).after_step is not Objective.after_step]
        self.reporters = build_reporters(cfg, self.model.objectives)
        self.step = 0
        self.train_time_s = 0.0  # training seconds before this process (from the checkpoint)
        self._segment_start = time.perf_counter()
        self.history: list = []
        self._stop_signal = None
        self._log_file = None

    # ----------------------------------------------------------------- set-up
    def _build_streams(self, extend_to: Optional[int] = None):
        """The streams, and the plan: ``total_steps`` is ``trainer.epochs`` passes capped by ``trainer.max_steps``;
        ``extend_to`` (a resumed run given a new ``max_steps``) raises ``trainer.epochs`` to reach it."""
        bs = self.tcfg["batch_size"]
        train = self.data.streamed_train()  # every batch carries its rows' indices (column `row`)
        sources = {"labeled": labeled_rows(train), "all": train}
        self.streams, self.stream_views, self.batches, self.routes = {}, {}, {}, []
        for i, obj in enumerate(self.model.objectives):
            route = {}
            for name, spec in obj.streams().items():
                spec = spec if isinstance(spec, StreamSpec) else StreamSpec(**spec)
                key = f"{spec.source}|{spec.batch_ratio}|{spec.views}"
                if key not in self.streams:
                    rows = sources.get(spec.source)
                    if rows is None:
                        raise ConfigError(f"objectives[{i}]", f"unknown stream source '{spec.source}'")
                    if len(rows) == 0:
                        raise ConfigError(f"objectives[{i}].name", f"'{self.model.names[i]}' needs {spec.source} "
                                                                   f"training rows, but the data has none")
                    size = max(1, round(bs * spec.batch_ratio))
                    if size % self.world:
                        raise ConfigError("trainer.batch_size", f"stream batch {size} is not divisible by the "
                                                                f"{self.world} processes")
                    self.streams[key] = Stream(rows, size, self.cfg["seed"], key, self.rank, self.world)
                    self.stream_views[key] = [build("views", v, self.data.info, path=f"objectives[{i}].views")
                                              for v in (spec.views or ())]
                    self.batches[key] = make_batches(self.streams[key], self.stream_views[key], self.data.info,
                                                     self.device, self.tcfg["num_workers"])
                route[name] = key
            self.routes.append(route)
        # an objective that updates several times on each batch it draws (a rollout) stretches the epoch
        updates = max(obj.updates_per_batch(self.streams[key].batch_size)  # the global batch's rows
                      for obj, route in zip(self.model.objectives, self.routes) for key in route.values())
        self.steps_per_epoch = updates * max(math.ceil(len(s.data) / s.batch_size) for s in self.streams.values())
        if extend_to is not None and extend_to > self.tcfg["epochs"] * self.steps_per_epoch:
            self.tcfg["epochs"] = math.ceil(extend_to / self.steps_per_epoch)  # recorded in config.yaml on resume
        self.total_steps = self.tcfg["epochs"] * self.steps_per_epoch
        if self.tcfg["max_steps"] is not None:
            self.total_steps = min(self.total_steps, self.tcfg["max_steps"])
        self.replanned = None  # (steps planned before, steps now) when a resume changed the plan
        self.rows_per_step = sum(s.batch_size for s in self.streams.values())

    def _build_optimizers(self):
        self.optimizers, self.schedulers = {}, {}
        for i, obj in enumerate(self.model.objectives):
            for player in self.cfg["objectives"][i]["optimizers"]:
                if player not in obj.players:
                    raise ConfigError(f"objectives[{i}].optimizers.{player}",
                                      f"'{self.model.names[i]}' has no player '{player}'"
                                      f"{did_you_mean(player, obj.players)} (players: {', '.join(obj.players)})")
        for player, params in self.model.player_params.items():
            if not params:
                raise ConfigError("objectives", f"player '{player}' has no trainable parameters")
            opt_cfg, path = dict(self.tcfg["optimizer"]), "trainer.optimizer"
            for i, obj in enumerate(self.model.objectives):
                override = self.cfg["objectives"][i]["optimizers"].get(player)
                if override:
                    if not isinstance(override, dict):
                        raise ConfigError(f"objectives[{i}].optimizers.{player}", "expected a mapping of optimizer keys")
                    if "name" in override and override["name"] != opt_cfg["name"]:
                        opt_cfg = {}  # another optimizer: trainer.optimizer's keys may not apply to it
                    opt_cfg.update(override)
                    path = f"objectives[{i}].optimizers.{player}"
            groups = parameter_groups(self.model.encoder, params, {"name": "adamw", **opt_cfg})
            self.optimizers[player] = build("optimizers", opt_cfg, groups, path=path)
            self.schedulers[player] = build("schedulers", self.tcfg["scheduler"], self.optimizers[player],
                                            self.total_steps, path="trainer.scheduler")

    # ------------------------------------------------------------- the loop
    def _next_batches(self) -> list:
        """One batch per stream route of the objectives that draw one this step (``None`` for the others:
        a rollout still draining its buffer), so no stream advances without its batch being used."""
        routes = [route if obj.needs_batch() else None for obj, route in zip(self.model.objectives, self.routes)]
        wanted = {key for route in routes if route for key in route.values()}
        fetched = {key: next(batches) for key, batches in self.batches.items() if key in wanted}
        return [route and {name: fetched[key] for name, key in route.items()} for route in routes]

    def _train_step(self, batches) -> dict:
        outputs = {}
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        for player in self.model.players:
            with autocast:
                total, outs = self.net(batches, player)
            # one host sync (.item() is cheaper than isfinite + bool); under torchrun every rank stops together
            finite = math.isfinite(total.item())
            if distributed.failed_anywhere(not finite):
                bad = [n for n, o in outs.items() if not torch.isfinite(o.loss).all()] or list(outs)
                where = ("on another process's rows" if finite else
                         f"({float(total.detach())}) in objective '{bad[0]}'")
                kept = self.run_dir is not None and (self.run_dir / "checkpoints" / "last.pt").is_file()
                raise TrainingError(f"non-finite loss {where} at step {self.step + 1} (player '{player}'); stopping. "
                                    + (f"The last good checkpoint is kept in {self.run_dir}/checkpoints."
                                       if kept else "No checkpoint was written before it."))
            opt = self.optimizers[player]
            opt.zero_grad(set_to_none=True)
            total.backward()
            if self.tcfg["grad_clip"]:
                nn.utils.clip_grad_norm_(self.model.player_params[player], self.tcfg["grad_clip"])
            opt.step()
            self.schedulers[player].step()
            outputs[player] = (total, outs)
        for obj in self._after_step:
            obj.after_step(self.step, self.model.encoder)
        if self.ema is not None:  # after the hooks: the average sees each step's final weights
            ema_update(self.ema, self.model, warmup_decay(self.tcfg["ema_decay"], self.step))
        return outputs

    def _log_record(self, outputs, elapsed: float, steps: int) -> dict:
        rec = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3)}
        rec["loss"] = sum(float(t.detach()) for t, _ in outputs.values())
        many = len(outputs) > 1
        for player, (_, outs) in outputs.items():
            for name, out in outs.items():
                rec[f"{name}/{player}_loss" if many else f"{name}/loss"] = float(out.loss.detach())
                for k, v in out.metrics.items():
                    v = v() if callable(v) else v
                    rec[f"{name}/{k}"] = float(v.detach() if torch.is_tensor(v) else v)
            rec[f"lr/{player}" if len(outputs) > 1 else "lr"] = self.optimizers[player].param_groups[0]["lr"]
        if self.world > 1:  # log the mean over ranks, i.e. the loss of the global batch
            rec.update(distributed.mean_over_ranks({k: v for k, v in rec.items()
                                                    if k not in ("step", "epoch") and not k.startswith("lr")}))
        rec["samples_per_s"] = round(self.rows_per_step * steps / max(elapsed, 1e-9), 1)
        return rec

    def run_context(self) -> RunContext:
        """What reporters see of this run (:class:`sslkit.reporters.RunContext`)."""
        return RunContext(self.data, self.model, self.device, self.run_dir, self.history, self.cfg["seed"])

    def evaluated_weights(self):
        """A context in which the model holds the weights it is evaluated and saved with: the average of
        ``trainer.ema_decay`` when one is kept (its own weights come back on leaving), else its own."""
        if self.ema is None:
            return contextlib.nullcontext(self.model)
        return averaged_weights_in(self.model, self.ema)

    def evaluate(self) -> dict:
        """The objectives' ``test_*`` metrics and the reporters' :meth:`~sslkit.reporters.Reporter.during`,
        with the :meth:`evaluated_weights`. Under ``torchrun`` every rank calls it: the objectives score their
        share of the test rows and add up over the ranks; the reporters run on rank 0 (others get only the
        objectives' metrics)."""
        with self.evaluated_weights():
            return self._evaluate()

    def _evaluate(self) -> dict:
        metrics = {}
        self.model.eval()
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16) if self.amp else contextlib.nullcontext()
        with torch.no_grad(), autocast:
            for name, obj in zip(self.model.names, self.model.objectives):
                for k, v in obj.evaluate(self.data, self.model.encoder, self.tcfg["batch_size"],
                                         self.device).items():
                    metrics[k if k not in metrics else f"{name}/{k}"] = v
            if distributed.is_main():
                run = self.run_context()
                for reporter in self.reporters:
                    metrics.update(reporter.during(run))
        self.model.train()
        return metrics

    def report(self) -> dict:
        """The objectives' :meth:`~sslkit.objectives.base.Objective.final_metrics` and the reporters' final
        metrics and files (rank 0, eval mode, no autocast: scores and figures in float32), with the
        :meth:`evaluated_weights`."""
        with self.evaluated_weights():
            return self._report()

    def _report(self) -> dict:
        final = {}
        for obj in self.model.objectives:
            final.update(obj.final_metrics())
        self.model.eval()
        run = self.run_context()
        with torch.no_grad():
            for reporter in self.reporters:
                final.update(reporter.report(run))
        self.model.train()
        return final

    def _write(self, rec: dict):
        self.history.append(rec)
        if self._log_file is not None:  # open for the loop: flushed per line, not reopened per line
            self._log_file.write(json.dumps(rec) + "\n")
            self._log_file.flush()
        elif self.run_dir is not None:
            with open(self.run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")

    def fit(self, resume: Optional[dict] = None) -> dict:
        if resume is not None:
            self.load_state(resume)
        ev_every = self.tcfg["eval_every"] or self.steps_per_epoch
        ck_every = self.tcfg["checkpoint_every"] or self.steps_per_epoch
        log_every = max(1, self.tcfg["log_every"])
        main = distributed.is_main()
        bar = None
        if self.tcfg["progress"] and main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.total_steps, initial=self.step, unit="step", dynamic_ncols=True, leave=False,
                       disable=None)  # None: off when stderr is not a terminal (CI logs, pipes)
        self._install_signals()
        if main and self.run_dir is not None:
            self._log_file = open(self.run_dir / "metrics.jsonl", "a")
        self.model.train()
        start = last_time = self._segment_start = time.perf_counter()
        last_step = self.step
        try:
            while self.step < self.total_steps:
                outputs = self._train_step(self._next_batches())
                self.step += 1
                if bar is not None:
                    bar.update(1)
                done = self.step == self.total_steps
                if self.step % log_every == 0 or done:
                    now = time.perf_counter()
                    rec = self._log_record(outputs, now - last_time, self.step - last_step)
                    last_time, last_step = now, self.step
                    if main:
                        self._write(rec)
                    if bar is not None:
                        bar.set_postfix(loss=f"{rec['loss']:.4f}", samples_s=f"{rec['samples_per_s']:.0f}", refresh=False)
                if self.step % ev_every == 0 and not done:
                    metrics = self.evaluate()  # on every rank, each its share of the test rows
                    if main:
                        self._write({"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3),
                                     **metrics})
                    distributed.barrier()
                if (self.step % ck_every == 0 or done) and main:
                    self.save_checkpoint()
                if self._stop_signal is not None and not done:
                    if main:
                        self.save_checkpoint()
                    raise Interrupted(f"stopped by {self._stop_signal.name} at step {self.step}; checkpoint saved"
                                      + (f". Continue with: sslkit run --resume {self.run_dir}" if self.run_dir else ""),
                                      self._stop_signal)
        finally:
            self._restore_signals()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None
            if bar is not None:
                bar.close()
        wall = self.train_time_s + time.perf_counter() - start
        final = {"step": self.step, "epoch": round(self.step / self.steps_per_epoch, 3)}
        train = [r for r in self.history if "loss" in r]
        if train:
            final["train_loss"] = train[-1]["loss"]
        final.update(self.evaluate())
        if main:
            self._write({"step": self.step, "epoch": final["epoch"], **{k: v for k, v in final.items()
                                                                         if k.startswith("test_")}})
            final.update(self.report())
            if self.ema is not None:  # says which weights the metrics describe
                final["ema_decay"] = self.tcfg["ema_decay"]
        # over the whole run, resumes included (the time lost after the last checkpoint is not counted)
        final["train_time_s"] = round(wall, 3)
        final["samples_per_s"] = round(self.rows_per_step * self.step / max(wall, 1e-9), 1)
        return final

    # ---------------------------------------------------------- checkpoints
    def state_dict(self) -> dict:
        state = {
            "model": self.model.state_dict(),
            "optimizers": {p: o.state_dict() for p, o in self.optimizers.items()},
            "schedulers": {p: s.state_dict() for p, s in self.schedulers.items()},
            "streams": {k: s.state_dict() for k, s in self.streams.items()},
            "step": self.step,
            "total_steps": self.total_steps,
            "train_time_s": self.train_time_s + time.perf_counter() - self._segment_start,
            "rng": torch.get_rng_state(),
            "history": [json.dumps(r) for r in self.history],
        }
        tok = self.data.info.tokenizer
        if tok is not None:  # what the ids meant, so a later encoder.init_from can refuse other ids
            state["tokenizer"] = json.dumps(tok.state())
        if self.ema is not None:  # by parameter name, so checkpoint.trained_weights can put it in the model's place
            state["ema_model"] = {k: v.detach() for k, v in self.ema.named_weights().items()}
        if self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state(self.device)
        return state

    def load_state(self, state: dict) -> None:
        # a vocabulary rebuilt from the recipe can differ from the one the checkpoint trained on (another
        # split, or a run folder from before vocabularies were fitted on the training rows only)
        refuse_other_tokenizer(recorded_tokenizer(state), self.data.info.tokenizer, "--resume", "the checkpoint")
        try:
            self.model.load_state_dict(state["model"])
            for p, o in self.optimizers.items():
                o.load_state_dict(state["optimizers"][p])
            for p, s in self.schedulers.items():
                s.load_state_dict(state["schedulers"][p])
            for k, s in self.streams.items():
                s.load_state_dict(state["streams"][k])
            if self.ema is not None:
                if "ema_model" not in state:
                    raise KeyError("the checkpoint has no weight average (it was written without trainer.ema_decay)")
                self.ema.load_named_weights(state["ema_model"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise TrainingError(f"checkpoint does not match this recipe: {str(exc).splitlines()[0][:300]}") from None
        self.step = int(state["step"])
        before = state.get("total_steps", self.total_steps)
        if before != self.total_steps:
            # a schedule that depends on the total (cosine, linear) follows the new plan from this step on: its
            # learning rate is what step s of a run planned for the new total would have
            self.replanned = (int(before), self.total_steps)
        self.train_time_s = float(state.get("train_time_s", 0.0))
        self.history = [json.loads(r) for r in state.get("history", [])]
        torch.set_rng_state(state["rng"])
        if "cuda_rng" in state and self.device.type == "cuda":
            torch.cuda.set_rng_state(state["cuda_rng"], self.device)

    def save_checkpoint(self) -> None:
        if self.run_dir is not None:
            checkpoint.save(self.state_dict(), self.run_dir / "checkpoints" / "last.pt")

    # -------------------------------------------------------------- signals
    def _install_signals(self):
        self._old_handlers = {}

        def handler(signum, frame):
            self._stop_signal = signal.Signals(signum)

        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old_handlers[sig] = signal.signal(sig, handler)
        except ValueError:  # not the main thread: leave signals alone
            self._old_handlers = {}

    def _restore_signals(self):
        for sig, old in self._old_handlers.items():
            signal.signal(sig, old)
