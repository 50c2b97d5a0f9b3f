"""The three-stage training run as a generator of progress events; resumable and cancellable.

Run folder (``out_dir``):
- ``model.safetensors``: the best model of the latest stage (by its validation metric) — the checkpoint
  to use; its card carries configs, data fingerprint, splits, validation and (at the end) test metrics;
- ``last.safetensors`` + ``train_state.safetensors``: the latest weights, optimiser moments, auxiliary
  modules (discriminator) and progress, written every ``checkpoint_every_steps`` steps, at every
  validation, on cancel and at the end of a stage: ``resume=True`` continues from there;
- ``run.json``: the configuration, splits and data fingerprint; ``events.jsonl``: the event log.

Every step's data, noise and dropout come from generators seeded by (seed, stage, step), so a resumed
run is the same run: it reaches the same weights as one that was never interrupted.
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from ..device import resolve_device
from ..io import checkpoints as ck
from ..io.safetensors_header import file_sha256
from ..metrics import ssim
from ..system import Microscope
from . import data as D
from .config import STAGE_NUMBERS, StageConfig, TrainConfig
from .evaluation import evaluate_patches
from .events import TrainEvent

MODEL_FILE = "model.safetensors"
LAST_FILE = "last.safetensors"
STATE_FILE = "train_state.safetensors"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
#: progress key of the SHA-256 of the last.safetensors the training state was written with
WEIGHTS_DIGEST_KEY = "last_weights_sha256"

_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False}


class TrainingError(ValueError):
    """A run cannot start or continue; the message says why and what to do."""


def _seed_of(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


class Trainer:
    """``Trainer(config, data_dir, out_dir).run()`` yields :class:`TrainEvent` until the run ends."""

    def __init__(self, config: TrainConfig, data_dir, out_dir, *, resume: bool = False,
                 cancel: threading.Event | None = None, command: str | None = None):
        self.config = config
        self.data_dir = Path(data_dir)
        self.out_dir = Path(out_dir)
        self.resume = resume
        self.cancel = cancel or threading.Event()
        self.command = command
        self.device = resolve_device(config.device)
        self._t0 = time.perf_counter()
        self._elapsed_before = 0.0
        self._stop_reason: str | None = None

    # ------------------------------------------------------------------ setup
    def _prepare(self) -> None:
        cfg = self.config
        paths = D.discover_fields(self.data_dir)
        if len(paths) < 3 or cfg.data.val_fraction == 0:
            raise TrainingError(f"{self.data_dir} has {len(paths)} field(s); training needs at least 3 and a "
                                "validation split (fields are split by field of view into train/val/test)")
        self.splits = D.split_by_field(paths, cfg.data.val_fraction, cfg.data.test_fraction, cfg.seed)
        grid = cfg.system.encoder.optics.grid
        patch = cfg.data.patch_px
        load = dict(pixel_size_um=grid.pixel_size_um, wavelength_um=grid.wavelength_um, min_side_px=patch)
        self.train_set = D.load_fieldset(self.splits["train"], **load)
        self.val_set = D.load_fieldset(self.splits["val"], **load)
        self.test_set = D.load_fieldset(self.splits["test"], **load)
        self.fingerprint = D.fingerprint(D.FieldSet(
            self.train_set.paths + self.val_set.paths + self.test_set.paths,
            self.train_set.fields + self.val_set.fields + self.test_set.fields, []))
        b = cfg.system.encoder.detector.binning
        if patch % b:
            raise TrainingError(f"patch_px {patch} is not a multiple of the binning {b}")
        if cfg.system.encoder.optics.kind == "d2nn" and patch != cfg.system.encoder.optics.n_neurons:
            raise TrainingError(f"PhaseD2NN patches must equal its aperture "
                                f"({cfg.system.encoder.optics.n_neurons} px); got patch_px {patch}")
        per_side = cfg.data.val_patches_per_side
        self.val_patches = D.fixed_patches(self.val_set, patch, per_side, b)
        self.test_patches = D.fixed_patches(self.test_set, patch, per_side, b)
        with torch.random.fork_rng():  # decoder initialisation draws from the global generator
            torch.manual_seed(_seed_of(cfg.seed, 0, 1))
            self.model = Microscope(cfg.system, generator=torch.Generator().manual_seed(_seed_of(cfg.seed, 0)))
        if cfg.init:
            self._load_init(cfg.init)
        self.model.to(self.device).train()
        self.discriminator: nn.Module | None = None
        self.stage2_loss = None

    def _load_init(self, init: str) -> None:
        from ..pretrained import resolve_model

        path = resolve_model(init)
        info = ck.read_checkpoint_info(path)
        ck.check_compatible(info, self.config.system.encoder, what=f"preset {self.config.preset}")
        model, _ = ck.load_checkpoint(path, device="cpu")
        if not self.config.init_decoder:  # the init's optics only; a new decoder (and its normalisation)
            optics = {k: v for k, v in model.state_dict().items() if k.startswith("encoder.")}
            self.model.load_state_dict(optics, strict=False)
            return
        if info.config.decoder != self.config.system.decoder:
            raise TrainingError(f"--init {init} has a different decoder ({info.config.decoder.family}) than "
                                "this run; fine-tuning keeps the init's architecture (train_config(init=…) "
                                "builds the run from the checkpoint's configuration), or pass --decoder to "
                                "train a new decoder on the init's optics")
        self.model.load_state_dict(model.state_dict())

    def _run_record(self) -> dict:
        return {"config": json.loads(self.config.model_dump_json()),
                "splits": {k: [p.name for p in v] for k, v in self.splits.items()},
                "data_dir": str(self.data_dir), "data_fingerprint": self.fingerprint,
                "command": self.command}

    def _write_json(self, name: str, payload: dict) -> None:
        path = self.out_dir / name
        tmp = path.with_name(f".{name}.tmp")
        tmp.write_text(json.dumps(payload, indent=2, default=str))
        os.replace(tmp, path)

    def _log(self, event: TrainEvent) -> TrainEvent:
        if event.kind != "step" or event.step % 10 == 0 or event.step == event.total_steps:
            with open(self.out_dir / EVENTS_FILE, "a") as fh:
                fh.write(event.to_json() + "\n")
        return event

    @property
    def elapsed_s(self) -> float:
        return self._elapsed_before + time.perf_counter() - self._t0

    # ------------------------------------------------------------------ public entry point
    def run(self) -> Iterator[TrainEvent]:
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        progress = self._load_progress() if self.resume else None
        if progress is None:
            if (self.out_dir / STATE_FILE).exists():
                raise TrainingError(f"{self.out_dir} holds an unfinished run; continue it with --resume "
                                    "or choose another --out folder")
            self._write_json(RUN_FILE, self._run_record())
            progress = {"stage_index": 0, "step": 0, "best": None, "best_step": None, "history": [],
                        "stage_steps": {}, "elapsed_s": 0.0, "finished": False}
        self.progress = progress
        self._elapsed_before = progress.get("elapsed_s", 0.0)
        self._t0 = time.perf_counter()
        yield self._log(TrainEvent("start", message=(
            f"{'resuming' if self.resume else 'starting'} {cfg.preset or 'custom'} ({cfg.budget} budget) on "
            f"{self.device}: {len(self.train_set)} train / {len(self.val_set)} val / {len(self.test_set)} "
            f"test fields")))
        if progress.get("finished"):
            yield self._log(TrainEvent("done", message="this run had already finished", path=str(self.out_dir / MODEL_FILE)))
            return
        for index in range(progress["stage_index"], len(cfg.stages)):
            if index != progress["stage_index"]:
                progress.update(stage_index=index, step=0, best=None, best_step=None)
            finished = yield from self._run_stage(cfg.stages[index])
            if not finished:
                return
        yield from self._finish()

    # ------------------------------------------------------------------ resume
    def _load_progress(self) -> dict | None:
        state_path = self.out_dir / STATE_FILE
        if not state_path.exists():
            if (self.out_dir / RUN_FILE).exists():
                raise TrainingError(f"{self.out_dir} has no saved training state to resume")
            return None
        record = json.loads((self.out_dir / RUN_FILE).read_text())
        if record["config"] != json.loads(self.config.model_dump_json()):
            raise TrainingError(f"the run in {self.out_dir} was started with a different configuration; "
                                "resume with the same options (see run.json) or start a new --out")
        if record["data_fingerprint"] != self.fingerprint:
            raise TrainingError(f"the data in {self.data_dir} changed since the run in {self.out_dir} "
                                "started (fingerprint differs); resume on the same data")
        progress = ck.load_train_state(state_path)
        last = self.out_dir / LAST_FILE
        _check_state_matches_weights(self.out_dir, progress)
        if last.exists():
            model, _ = ck.load_checkpoint(last, device="cpu")
            self.model.load_state_dict(model.state_dict())
            self.model.to(self.device)
        return progress

    # ------------------------------------------------------------------ one stage
    def _trainable(self, stage: StageConfig, step: int, total: int):
        """Optimiser parameter groups (and a gradient mask) for this stage and step."""
        m = self.model
        if stage.name == "optics":
            if stage.progressive_layers and m.config.optics_kind == "d2nn":
                layer, joint = _algorithm1_phase(step, total, m.config.encoder.optics.n_layers)
                lr = stage.joint_lr if joint else stage.lr
                optics = m.encoder.optics
                masks = [p for p in (optics.phase_rad, optics.amplitude_logit) if p is not None]
                plr = stage.power_lr or lr
                return [{"params": masks, "lr": lr, "base_lr": lr},
                        {"params": [optics.power_logit], "lr": plr, "base_lr": plr}], (layer, joint)
            return [{"params": m.optics_parameters(), "lr": stage.lr, "base_lr": stage.lr}], None
        if stage.name == "decoder":
            return [{"params": m.decoder_parameters(), "lr": stage.lr, "base_lr": stage.lr}], None
        groups = [{"params": m.decoder_parameters(), "lr": stage.lr, "base_lr": stage.lr}]
        if not stage.freeze_optics:
            olr = stage.optics_lr or stage.lr
            groups.append({"params": m.optics_parameters(), "lr": olr, "base_lr": olr})
        return groups, None

    def _run_stage(self, stage: StageConfig):
        cfg = self.config
        number = STAGE_NUMBERS[stage.name]
        total = stage.total_steps(len(self.train_set))
        progress = self.progress
        progress["stage_steps"][stage.name] = total
        step = progress["step"]
        self._set_requires_grad(stage)
        if stage.name == "decoder":
            self._prepare_stage2(stage)
        yield self._log(TrainEvent("stage_start", stage.name, number, step, total,
                                   message=f"{total} steps"))
        groups, phase = self._trainable(stage, step, total)
        optimizer = torch.optim.Adam(groups)
        d_opt = None
        if self.discriminator is not None:
            d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=stage.discriminator_lr)
        if self.resume and step > 0 and (self.out_dir / STATE_FILE).exists():
            opts = {"main": optimizer, **({"disc": d_opt} if d_opt else {})}
            mods = {"disc": self.discriminator} if self.discriminator is not None else None
            ck.load_train_state(self.out_dir / STATE_FILE, opts, mods)
        self.resume = False
        if step == 0 and stage.name != "optics":
            yield self._log(self._validate(stage, 0, total))
        stage_t0 = time.perf_counter()
        start_step = step
        while step < total:
            if self.cancel.is_set() or self._time_is_up():
                reason = self._stop_reason or "cancelled"
                self._save_state(stage, step, optimizer, d_opt)
                yield self._log(TrainEvent("cancelled", stage.name, number, step, total, message=(
                    f"{reason} at step {step}; {saved_files_message(self.out_dir)}"),
                    path=str(self.out_dir / MODEL_FILE), elapsed_s=self.elapsed_s))
                return False
            new_groups, new_phase = self._trainable(stage, step, total)
            if new_phase != phase:  # Algorithm 1: a fresh optimiser for every sub-step
                groups, phase = new_groups, new_phase
                optimizer = torch.optim.Adam(groups)
            for g in optimizer.param_groups:
                g["lr"] = stage.lr_at(step, total, g["base_lr"])
            loss, terms = self._train_step(stage, number, step, optimizer, d_opt, phase)
            step += 1
            done = step - start_step
            rate = (time.perf_counter() - stage_t0) / done
            yield self._log(TrainEvent("step", stage.name, number, step, total, loss=loss, terms=terms,
                                       lr=optimizer.param_groups[0]["lr"], elapsed_s=self.elapsed_s,
                                       eta_s=rate * (total - step)))
            validate = step % stage.val_every == 0 or step == total
            if validate:
                yield self._log(self._validate(stage, step, total))
            if validate or step % cfg.checkpoint_every_steps == 0:
                self._save_state(stage, step, optimizer, d_opt)
        # restore the stage's best weights before the next stage
        best_path = self.out_dir / MODEL_FILE
        if best_path.exists() and progress.get("best") is not None:
            best, _ = ck.load_checkpoint(best_path, device="cpu")
            self.model.load_state_dict(best.state_dict())
            self.model.to(self.device)
        if best_path.exists():  # keep each stage's result (stage 1 alone = the all-optical baseline)
            kept = self.out_dir / f"stage{number}_{stage.name}.safetensors"
            tmp = kept.with_name(f".{kept.name}.tmp")
            shutil.copyfile(best_path, tmp)
            os.replace(tmp, kept)
        progress.update(stage_index=progress["stage_index"] + 1, step=0, best=None, best_step=None)
        self._save_state(stage, 0, None, None)
        yield self._log(TrainEvent("stage_end", stage.name, number, total, total, elapsed_s=self.elapsed_s,
                                   message="finished"))
        return True

    def _set_requires_grad(self, stage: StageConfig) -> None:
        optics = stage.name == "optics" or (stage.name == "end_to_end" and not stage.freeze_optics)
        decoder = stage.name in ("decoder", "end_to_end")
        for p in self.model.optics_parameters():
            p.requires_grad_(optics)
        for p in self.model.decoder_parameters():
            p.requires_grad_(decoder)

    def _time_is_up(self) -> bool:
        limit = self.config.max_minutes
        if limit is not None and self.elapsed_s > limit * 60:
            self._stop_reason = f"time budget of {limit:g} min reached"
            return True
        return False

    # ------------------------------------------------------------------ steps
    def _train_step(self, stage: StageConfig, number: int, step: int, optimizer, d_opt, phase):
        cfg = self.config
        rng = D.step_rng(cfg.seed, number, step)
        torch.manual_seed(_seed_of(cfg.seed, number, step, 1))
        noise_gen = torch.Generator(device=self.device).manual_seed(_seed_of(cfg.seed, number, step, 2))
        optimizer.zero_grad(set_to_none=True)
        terms: dict[str, float] = {}
        if stage.name == "optics":
            loss = self._optics_loss(rng, stage, phase)
        elif stage.name == "decoder":
            loss, terms = self._decoder_loss(rng, stage, noise_gen, d_opt)
        else:
            loss, terms = self._end_to_end_loss(rng, stage, noise_gen)
        loss.backward()
        if phase is not None:
            self._mask_algorithm1_gradients(*phase)
        optimizer.step()
        if getattr(self, "_pending_discriminator", None) is not None:
            self._discriminator_step()
        return float(loss.detach()), terms

    def _regions(self, rng, batch: int):
        """Training patches with the optical context they need, on the device."""
        cfg = self.config
        ctx = self.model.encoder.optics.context_px()
        fields, targets = D.sample_training_patches(self.train_set, rng, batch, cfg.data.patch_px, ctx,
                                                    cfg.data.flips, outside=cfg.system.encoder.outside_field)
        return torch.from_numpy(fields).to(self.device), torch.from_numpy(targets).to(self.device), ctx

    def _center(self, x: torch.Tensor, ctx: int) -> torch.Tensor:
        p = self.config.data.patch_px
        return x[..., ctx:ctx + p, ctx:ctx + p]

    def _optics_loss(self, rng, stage: StageConfig, phase):
        fields, targets, ctx = self._regions(rng, stage.batch_size)
        kwargs = {"n_active": phase[0]} if phase is not None else {}
        intensity = self.model.encoder.optical_intensity(fields, **kwargs)
        return (self._center(intensity, ctx) - targets).abs().mean()

    def _mask_algorithm1_gradients(self, layer: int, joint: bool) -> None:
        optics = self.model.encoder.optics
        keep = torch.zeros(optics.phase_rad.shape[0], dtype=torch.bool, device=optics.phase_rad.device)
        if joint:
            keep[:layer] = True
        else:
            keep[layer - 1] = True
        for param in (optics.phase_rad, optics.amplitude_logit):
            if param is not None and param.grad is not None:
                param.grad[~keep] = 0
        if optics.power_logit.grad is not None:
            only = torch.zeros_like(optics.power_logit.grad)
            only[layer - 1] = optics.power_logit.grad[layer - 1]
            optics.power_logit.grad = only

    # stage 2 ---------------------------------------------------------------------------
    def _prepare_stage2(self, stage: StageConfig) -> None:
        cfg = self.config
        if stage.perceptual_weight > 0 or stage.adversarial_weight > 0:
            from .losses import Stage2Loss, UNetDiscriminatorSN

            self.discriminator = UNetDiscriminatorSN().to(self.device) if stage.adversarial_weight > 0 else None
            self.stage2_loss = Stage2Loss(perceptual_weight=stage.perceptual_weight,
                                          adversarial_weight=stage.adversarial_weight,
                                          vgg_weights_path=cfg.vgg19_weights,
                                          discriminator=self.discriminator).to(self.device)
        self.pool = _MeasurementPool(self.model, self.train_set, cfg, self.device)
        fresh = ((cfg.init is None or not cfg.init_decoder) and float(self.model.meas_offset) == 0
                 and float(self.model.meas_scale) == 1)
        if fresh:  # a new decoder: normalise its input to the statistics of the training measurements
            self.model.fit_measurement_normalization(self.pool.all_measurements())

    def _decoder_loss(self, rng, stage: StageConfig, noise_gen, d_opt):
        meas, targets = self.pool.sample(rng, stage.batch_size, noise_gen)
        pred = self.model.decode(meas)
        if self.stage2_loss is None:
            loss = (pred - targets).abs().mean()
            return loss, {"l1": float(loss.detach())}
        loss, terms = self.stage2_loss(pred[:, None], targets[:, None])
        if self.discriminator is not None and d_opt is not None:
            self._pending_discriminator = (targets[:, None], pred[:, None].detach(), d_opt, terms)
        return loss, terms

    def _discriminator_step(self) -> None:
        """Update the discriminator after the generator's step (its graph used the old weights)."""
        from .losses import discriminator_loss

        real, fake, d_opt, terms = self._pending_discriminator
        self._pending_discriminator = None
        d_opt.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(self.discriminator, real, fake)
        d_loss.backward()
        d_opt.step()
        terms["discriminator"] = float(d_loss.detach())

    # stage 3 ---------------------------------------------------------------------------
    def _end_to_end_loss(self, rng, stage: StageConfig, noise_gen):
        fields, targets, ctx = self._regions(rng, stage.batch_size)
        enc = self.model.encoder
        det_field = self._center(enc.optics(fields), ctx)
        binned = enc.detector.demagnify(enc.detector.intensity(det_field))
        noise = "differentiable" if enc.config.detector.noisy else "none"
        meas = enc.detector.add_noise(binned, noise, noise_gen)
        pred = self.model.decode(meas)
        terms = {}
        loss = torch.zeros((), device=self.device)
        if stage.loss in ("l1", "l1_ssim"):
            l1 = (pred - targets).abs().mean()
            terms["l1"] = float(l1.detach())
            loss = loss + l1
        if stage.loss in ("ssim", "l1_ssim"):
            s = ssim(pred, targets).mean()
            terms["ssim"] = float(s.detach())
            loss = loss + (1 - s)
        return loss, terms

    # ------------------------------------------------------------------ validation & checkpoints
    def _validate(self, stage: StageConfig, step: int, total: int) -> TrainEvent:
        cfg = self.config
        optical = stage.name == "optics"
        optics_kwargs, selectable = {}, True
        if optical and stage.progressive_layers and self.model.config.optics_kind == "d2nn":
            # Algorithm 1: score the network as trained so far (detector behind the active layer); only the
            # complete network (all layers active) can become the stage's best model
            n_layers = self.model.config.encoder.optics.n_layers
            layer, _ = _algorithm1_phase(max(step - 1, 0), total, n_layers)
            optics_kwargs = {"n_active": layer}
            selectable = layer == n_layers
        metrics = evaluate_patches(self.model, self.val_set, self.val_patches, cfg.data.patch_px, cfg.seed,
                                   self.device, optical=True, decoder=not optical, optics_kwargs=optics_kwargs)
        if optics_kwargs:
            metrics["active_layers"] = optics_kwargs["n_active"]
        key = {"l1": "l1", "psnr": "psnr_db", "ssim": "ssim"}[stage.select_on]
        score = metrics[("optical_" if optical else "") + key]
        best = self.progress.get("best")
        higher = _HIGHER_IS_BETTER[stage.select_on]
        improved = selectable and (best is None or (score > best if higher else score < best))
        entry = {"stage": stage.name, "step": step, **metrics}
        self.progress["history"].append(entry)
        if improved:
            self.progress.update(best=score, best_step=step)
            self._save_model(stage, step, metrics)
        return TrainEvent("validation", stage.name, STAGE_NUMBERS[stage.name], step, total,
                          metrics={**metrics, "improved": improved}, elapsed_s=self.elapsed_s,
                          path=str(self.out_dir / MODEL_FILE) if improved else None)

    def _card(self, stage: StageConfig | None, step: int | None, metrics: dict | None) -> dict:
        cfg = self.config
        perceptual = getattr(self.stage2_loss, "perceptual_source", None) if self.stage2_loss else None
        return {
            "preset": cfg.preset, "budget": cfg.budget, "command": self.command,
            "train_config": json.loads(cfg.model_dump_json()),
            "stage": stage.name if stage else None, "stage_step": step,
            "stage_steps": self.progress.get("stage_steps"),
            "validation": metrics, "selection_metric": stage.select_on if stage else None,
            "data": {"fingerprint": self.fingerprint, "folder": str(self.data_dir),
                     "n_train": len(self.train_set), "n_val": len(self.val_set), "n_test": len(self.test_set),
                     "splits": {k: [p.name for p in v] for k, v in self.splits.items()}},
            "perceptual_source": perceptual,
            "wall_time_s": round(self.elapsed_s, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _save_model(self, stage: StageConfig, step: int, metrics: dict) -> None:
        ck.save_checkpoint(self.out_dir / MODEL_FILE, self.model, card=self._card(stage, step, metrics))

    def _save_state(self, stage: StageConfig, step: int, optimizer, d_opt) -> None:
        self.progress.update(step=step, elapsed_s=self.elapsed_s)
        last = ck.save_checkpoint(self.out_dir / LAST_FILE, self.model, card=self._card(stage, step, None))
        self.progress[WEIGHTS_DIGEST_KEY] = file_sha256(last)  # resume checks the state belongs to these weights
        opts = {}
        if optimizer is not None:
            opts["main"] = optimizer
        if d_opt is not None:
            opts["disc"] = d_opt
        mods = {"disc": self.discriminator} if (self.discriminator is not None and d_opt is not None) else None
        ck.save_train_state(self.out_dir / STATE_FILE, opts, self.progress, mods)

    def _finish(self):
        """Evaluate the final model once on the test split and write its card."""
        cfg = self.config
        best_path = self.out_dir / MODEL_FILE
        info = ck.read_checkpoint_info(best_path)
        test = evaluate_patches(self.model, self.test_set, self.test_patches, cfg.data.patch_px, cfg.seed,
                                self.device, optical=True, decoder=True) if self.test_patches else {}
        card = {**info.card, "test": test, "test_protocol": (
            f"{len(self.test_patches)} fixed {cfg.data.patch_px}² patches "
            f"({cfg.data.val_patches_per_side}×{cfg.data.val_patches_per_side} per field), evaluated once"),
            "wall_time_s": round(self.elapsed_s, 1)}
        ck.save_checkpoint(best_path, self.model, card=card)
        self.progress.update(finished=True)
        ck.save_train_state(self.out_dir / STATE_FILE, {}, self.progress)
        yield self._log(TrainEvent("test", metrics=test, elapsed_s=self.elapsed_s, path=str(best_path)))
        yield self._log(TrainEvent("done", message=f"model written to {best_path}", path=str(best_path),
                                   elapsed_s=self.elapsed_s))


def saved_files_message(out_dir: Path) -> str:
    """What a stopped run left in ``out_dir``, naming only files that exist, and how to continue."""
    best, last, state = (Path(out_dir) / name for name in (MODEL_FILE, LAST_FILE, STATE_FILE))
    parts = [f"the best model so far is {best}" if best.exists() else
             f"no best model was saved yet, so there is no {MODEL_FILE}"]
    if last.exists() and state.exists():
        parts.append(f"the latest weights are {last} (training state in {state.name}); continue with --resume")
    else:
        parts.append("nothing to resume from was saved; start the run again")
    return "; ".join(parts)


def _check_state_matches_weights(out_dir: Path, progress: dict) -> None:
    """Refuse a run folder whose training state was written for other weights than its last.safetensors."""
    expected = progress.get(WEIGHTS_DIGEST_KEY)
    if expected is None:  # a state written before digests existed: nothing to compare
        return
    last = out_dir / LAST_FILE
    found = file_sha256(last) if last.exists() else None
    if found != expected:
        what = "is missing" if found is None else f"holds other weights (sha256 {found[:12]}, expected {expected[:12]})"
        raise TrainingError(
            f"run folder {out_dir} is inconsistent: {STATE_FILE} (stage {progress.get('stage_index', 0) + 1}, "
            f"step {progress.get('step')}) belongs to other weights; {LAST_FILE} {what}. Resuming would not "
            f"continue the same run. Restore the two files together (from one copy of the folder), or start "
            f"again in a new --out folder; {MODEL_FILE}, if present, is still the best model saved")


def _algorithm1_phase(step: int, total: int, n_layers: int) -> tuple[int, bool]:
    """The paper's Algorithm 1 as a function of the step: layer i alone, then layers 1..i jointly.

    The stage's steps are split evenly over the 2n − 1 sub-steps (layer 1 has no joint sub-step).
    Returns (number of active layers, joint?).
    """
    phases = [(1, False)] + [(i, joint) for i in range(2, n_layers + 1) for joint in (False, True)]
    index = min(int(step * len(phases) / max(total, 1)), len(phases) - 1)
    return phases[index]


class _MeasurementPool:
    """Stage 2 inputs with the optics frozen, simulated once.

    LFF: the full-field measurement of every training field in its four flips; a training sample is a
    camera-aligned crop of one, so it is exactly what the microscope records. PhaseD2NN: a bank of
    patches imaged through the aperture. Noise is added per sample from the step's generator.
    """

    def __init__(self, model: Microscope, fieldset: D.FieldSet, cfg: TrainConfig, device):
        self.model, self.fieldset, self.cfg, self.device = model, fieldset, cfg, device
        self.b = model.encoder.config.detector.binning
        self.patch = cfg.data.patch_px
        with torch.no_grad():
            if model.config.optics_kind == "lff":
                self._build_full_fields()
            else:
                self._build_bank()

    def _build_full_fields(self) -> None:
        enc = self.model.encoder
        self.full: list[list[torch.Tensor]] = []
        for field in self.fieldset.fields:
            variants = []
            for fr, fc in ((False, False), (True, False), (False, True), (True, True)):
                f = D._flip(field, fr, fc)
                rows, cols = (f.shape[0] // self.b) * self.b, (f.shape[1] // self.b) * self.b
                out = enc.full_field_detector(torch.from_numpy(np.ascontiguousarray(f)).to(self.device))[:rows, :cols]
                variants.append(enc.detector.demagnify(enc.detector.intensity(out)[None])[0].cpu())
            self.full.append(variants)

    def _build_bank(self) -> None:
        enc = self.model.encoder
        rng = np.random.default_rng([self.cfg.seed, 2, 10 ** 6])
        fields, targets = D.sample_training_patches(self.fieldset, rng, self.cfg.data.d2nn_bank_size,
                                                    self.patch, 0, self.cfg.data.flips)
        meas = []
        for i in range(0, len(fields), 8):
            out = enc.optics(torch.from_numpy(fields[i:i + 8]).to(self.device))
            meas.append(enc.detector.demagnify(enc.detector.intensity(out)).cpu())
        self.bank_meas = torch.cat(meas)
        self.bank_targets = torch.from_numpy(targets)

    def all_measurements(self) -> torch.Tensor:
        """Every noise-free camera pixel of the pool (flattened)."""
        if self.model.config.optics_kind == "lff":
            return torch.cat([v.flatten() for variants in self.full for v in variants])
        return self.bank_meas.flatten()

    def sample(self, rng, batch: int, noise_gen):
        det = self.model.encoder.detector
        noise = "exact" if det.config.noisy else "none"
        if self.model.config.optics_kind == "lff":
            meas, targets, refs = [], [], []
            h = self.patch // self.b
            for _ in range(batch):
                k = int(rng.integers(len(self.fieldset)))
                v = int(rng.integers(4)) if self.cfg.data.flips else 0
                full = self.full[k][v]
                top = int(rng.integers(full.shape[0] - h + 1))
                left = int(rng.integers(full.shape[1] - h + 1))
                meas.append(full[top:top + h, left:left + h])
                refs.append(full.max())
                target = D._flip(self.fieldset.targets[k], v in (1, 3), v in (2, 3))
                t0, l0 = top * self.b, left * self.b
                targets.append(torch.from_numpy(np.ascontiguousarray(target[t0:t0 + self.patch, l0:l0 + self.patch])))
            meas_t = torch.stack(meas).to(self.device)
            if noise != "none":
                meas_t = det.add_noise(meas_t, noise, noise_gen, reference=torch.stack(refs).to(self.device))
            return meas_t, torch.stack(targets).to(self.device)
        idx = torch.from_numpy(rng.integers(len(self.bank_meas), size=batch))
        meas_t = self.bank_meas[idx].to(self.device)
        if noise != "none":
            meas_t = det.add_noise(meas_t, noise, noise_gen)
        return meas_t, self.bank_targets[idx].to(self.device)

