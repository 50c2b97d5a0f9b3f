"""The three-stage training run as a generator of progress events; resumable and cancellable.

The ``Trainer`` is one generic loop (seeding, learning-rate schedule, validation, checkpoints, resume)
over stage objects (:mod:`.stages`: what trains, the loss, the selection metric); every measurement
comes from the model's one acquisition (``self.acquisition``).

Run folder (``out_dir``):
- ``model.safetensors``: the best model of the latest stage (by its validation metric) — the checkpoint
  to use; its card carries configs, data fingerprint, splits, validation and (at the end) test metrics;
- ``last.safetensors`` + ``train_state.safetensors``: the latest weights, optimiser moments, auxiliary
  modules (discriminator) and progress, written every ``checkpoint_every_steps`` steps, at every
  validation, on cancel and at the end of a stage: ``resume=True`` continues from there;
- ``run.json``: the configuration, splits and data fingerprint; ``events.jsonl``: the event log;
- fluorescence: ``initial_patterns.json``: the binary patterns the run started from (packed bits, see
  :func:`napari_dmicro.pretrained.pack_patterns`), so the card can say how far the patterns moved.

Every step's data, noise and dropout come from generators seeded by (seed, stage, step), so a resumed
run is the same run: it reaches the same weights as one that was never interrupted.

Under ``torchrun`` the run spans several processes (:mod:`.distributed`: each trains on its share of
the global batch, gradients averaged by DDP, only rank 0 writes the folder); ``run.json`` and the cards
state the ``world_size``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..device import resolve_device
from ..io import checkpoints as ck
from ..io.safetensors_header import file_sha256
from ..pretrained import optics_report, pack_patterns, patterns_report
from . import data as D
from .config import TrainConfig
from .distributed import Processes
from .events import TrainEvent
from .initial import initial_microscope, seed_of
from .stages import Stage, build_stage

MODEL_FILE = "model.safetensors"
LAST_FILE = "last.safetensors"
STATE_FILE = "train_state.safetensors"
RUN_FILE = "run.json"
EVENTS_FILE = "events.jsonl"
#: fluorescence: the binary patterns the run started from (after any --init), written once at the start
INITIAL_PATTERNS_FILE = "initial_patterns.json"
#: progress key of the SHA-256 of the last.safetensors the training state was written with
WEIGHTS_DIGEST_KEY = "last_weights_sha256"

class TrainingError(ValueError):
    """A run cannot start or continue; the message says why and what to do."""


_seed_of = seed_of


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
        #: the processes of this run (one, or torchrun's); ``files``: the run folder as this process writes it
        self.processes = Processes.from_environment()
        self.files = self.processes.folder(self.out_dir)
        self.device = self.processes.device(resolve_device(config.device))
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
        if cfg.system.modality == "fluorescence":
            self._prepare_fluorescence()
            return
        grid = cfg.system.encoder.optics.grid
        patch = cfg.data.patch_px
        load = dict(pixel_size_um=grid.pixel_size_um, wavelength_um=grid.wavelength_um, min_side_px=patch)
        self.train_set = D.training_fieldset(self.splits["train"], cfg.data, **load)
        self.val_set = D.load_fieldset(self.splits["val"], phase_reference=cfg.data.phase_reference, **load)
        self.test_set = D.load_fieldset(self.splits["test"], phase_reference=cfg.data.phase_reference, **load)
        self.fingerprint = D.fingerprint(D.FieldSet(
            self.train_set.paths + self.val_set.paths + self.test_set.paths,
            self.train_set.fields + self.val_set.fields + self.test_set.fields, []))
        b = cfg.system.encoder.detector.binning
        if patch % b:
            raise TrainingError(f"patch_px {patch} is not a multiple of the binning {b}")
        self.model = initial_microscope(cfg.system, cfg.seed, cfg.optics_init)
        tile = self.model.encoder.tile_px()
        if tile is not None and patch != tile:
            raise TrainingError(f"patches of optics imaged aperture by aperture must equal the aperture "
                                f"({tile} px); got patch_px {patch}")
        per_side = cfg.data.val_patches_per_side
        self.val_patches = D.fixed_patches(self.val_set, patch, per_side, b)
        self.test_patches = D.fixed_patches(self.test_set, patch, per_side, b)
        if cfg.init:
            self._load_init(cfg.init)
        self.model.to(self.device).train()
        #: the one acquisition every stage and the evaluation measure through (follows the live optics)
        self.acquisition = self.model.encoder.acquisition()
        self.discriminator: nn.Module | None = None
        self.stage2_loss = None

    def _prepare_fluorescence(self) -> None:
        """Fluorescence stores (image + labels) at the encoder's pixel size; the model and its patterns."""
        from . import fluo_data as F

        cfg = self.config
        encoder, patch = cfg.system.encoder, cfg.data.patch_px
        if patch % encoder.period_px:
            raise TrainingError(f"patch_px {patch} is not a multiple of the pattern period {encoder.period_px} px "
                                f"(bin {encoder.detector.bin_px} × period_bins {encoder.patterns.period_bins})")
        load = dict(pixel_size_um=encoder.pixel_size_um, min_side_px=patch)
        self.train_set = F.training_set(self.splits["train"], cfg.data, **load)
        self.val_set = F.load_fluorescence_set(self.splits["val"], **load)
        self.test_set = F.load_fluorescence_set(self.splits["test"], **load)
        try:
            F.refuse_duplicated_fields(self.train_set, self.val_set, self.test_set)
        except F.FluorescenceDataError as exc:
            raise TrainingError(str(exc)) from None
        self.fingerprint = F.fingerprint(self.train_set, self.val_set, self.test_set)
        self.model = initial_microscope(cfg.system, cfg.seed, cfg.optics_init)
        self.val_patches = self.test_patches = None  # whole fields are evaluated
        if cfg.init:
            self._load_init(cfg.init)
        self.model.to(self.device).train()
        self.acquisition = None
        self.discriminator: nn.Module | None = None
        self.stage2_loss = None

    def _record_initial_patterns(self) -> None:
        """Fluorescence: write the binary patterns this run starts from (its seed's draw, or --init's)."""
        if self.config.system.modality != "fluorescence":
            return
        with torch.no_grad():
            start = self.model.encoder.illumination.transmission(True)
        self.files.write_json(INITIAL_PATTERNS_FILE, {
            "init": self.config.system.encoder.patterns.init, "seed": self.config.seed,
            "fine_tuned_from": self.config.init, **pack_patterns(start)})

    def _initial_patterns(self) -> dict | None:
        """The recorded start of a fluorescence run (None for QPM or a run begun before it was recorded)."""
        path = self.out_dir / INITIAL_PATTERNS_FILE
        if self.config.system.modality != "fluorescence" or not path.exists():
            return None
        record = json.loads(path.read_text())
        return {"shape": record["shape"], "bits_hex": record["bits_hex"]}

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
                "grid_adaptations": {**self.train_set.adaptations, **self.val_set.adaptations,
                                     **self.test_set.adaptations},
                "command": self.command, **self.processes.record(),
                "invocations": [self._invocation({"stage_index": 0, "step": 0})]}

    def _invocation(self, progress: dict) -> dict:
        """One start or resume of the run: where it started and on how many processes."""
        return {"stage_index": progress.get("stage_index", 0), "step": progress.get("step", 0),
                **self.processes.record(), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}

    def _record_resume(self, progress: dict) -> None:
        """run.json states the world size of the latest invocation and lists every invocation's."""
        record = json.loads((self.out_dir / RUN_FILE).read_text())
        record.update(self.processes.record())
        record["invocations"] = [*record.get("invocations", []), self._invocation(progress)]
        self.files.write_json(RUN_FILE, record)

    def _log(self, event: TrainEvent) -> TrainEvent:
        if event.kind != "step" or event.step % 10 == 0 or event.step == event.total_steps:
            self.files.append_line(EVENTS_FILE, event.to_json())
        return event

    @property
    def elapsed_s(self) -> float:
        """Training wall time of the whole run (all invocations), s."""
        return self._elapsed_before + time.perf_counter() - self._t0

    @property
    def invocation_elapsed_s(self) -> float:
        """Wall time of this invocation (since this run() started or resumed), s: what max_minutes limits."""
        return time.perf_counter() - self._t0

    # ------------------------------------------------------------------ public entry point
    def run(self) -> Iterator[TrainEvent]:
        self.processes.start(self.device)
        try:
            yield from self._run()
        finally:
            self.processes.close()

    def _run(self) -> Iterator[TrainEvent]:
        cfg = self.config
        for stage in cfg.stages:  # before any work: a batch the processes cannot share equally is refused
            self.processes.share(stage.batch_size)
        self.files.create()
        self._prepare()
        progress = self._load_progress() if self.resume else None
        if progress is None:
            if (self.out_dir / STATE_FILE).exists():
                raise TrainingError(f"{self.out_dir} holds an unfinished run; continue it with --resume "
                                    "or choose another --out folder")
            self.files.write_json(RUN_FILE, self._run_record())
            self._record_initial_patterns()
            progress = {"stage_index": 0, "step": 0, "best": None, "best_step": None, "history": [],
                        "stage_steps": {}, "elapsed_s": 0.0, "finished": False}
        elif not progress.get("finished"):
            self._record_resume(progress)
        self.progress = progress
        self._elapsed_before = progress.get("elapsed_s", 0.0)
        self._t0 = time.perf_counter()
        processes = f" × {self.processes.world_size} processes" if self.processes.active else ""
        yield self._log(TrainEvent("start", message=(
            f"{'resuming' if self.resume else 'starting'} {cfg.preset or 'custom'} ({cfg.budget} budget) on "
            f"{self.device}{processes}: {len(self.train_set)} train / {len(self.val_set)} val / "
            f"{len(self.test_set)} test fields")))
        if progress.get("finished"):
            yield self._log(TrainEvent("done", message="this run had already finished",
                                       path=str(self.out_dir / MODEL_FILE)))
            return
        for index in range(progress["stage_index"], len(cfg.stages)):
            if index != progress["stage_index"]:
                progress.update(stage_index=index, step=0, best=None, best_step=None)
            finished = yield from self._run_stage(build_stage(cfg.stages[index], self))
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
        # compared as configurations: fields added since the run started take their defaults; the time
        # budget limits one invocation, so a time-limited run resumes with any (or no) --max-minutes
        started = TrainConfig.model_validate(record["config"]).model_copy(update={"max_minutes": None})
        if started != self.config.model_copy(update={"max_minutes": None}):
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

    # ------------------------------------------------------------------ one stage (generic loop)
    def _run_stage(self, stage: Stage):
        cfg = self.config
        number = stage.number
        total = stage.total_steps()
        progress = self.progress
        progress["stage_steps"][stage.name] = total
        step = progress["step"]
        self.stage = stage  # the stage in progress (its pool, losses, schedule)
        stage.setup()
        self.processes.wrap(self.model, self.device)
        yield self._log(TrainEvent("stage_start", stage.name, number, step, total,
                                   message=f"{total} steps"))
        groups, schedule = stage.param_groups(step, total)
        optimizer = torch.optim.Adam(groups)
        d_opt = stage.auxiliary_optimizers().get("disc")
        self.processes.average_gradients_of(d_opt)
        if self.resume and step > 0 and (self.out_dir / STATE_FILE).exists():
            opts = {"main": optimizer, **({"disc": d_opt} if d_opt else {})}
            mods = {"disc": self.discriminator} if self.discriminator is not None else None
            ck.load_train_state(self.out_dir / STATE_FILE, opts, mods)
        self.resume = False
        if step == 0 and stage.validate_at_start:
            yield self._log(self._validate(stage, 0, total))
        stage_t0 = time.perf_counter()
        start_step = step
        while step < total:
            if self.processes.any(self.cancel.is_set() or self._time_is_up(), self.device):
                reason = self._stop_reason or "cancelled"
                self._save_state(stage, step, optimizer, d_opt)
                yield self._log(TrainEvent("cancelled", stage.name, number, step, total, message=(
                    f"{reason} at step {step}; {saved_files_message(self.out_dir)}"),
                    path=str(self.out_dir / MODEL_FILE), elapsed_s=self.elapsed_s))
                return False
            new_groups, new_schedule = stage.param_groups(step, total)
            if new_schedule != schedule:  # e.g. Algorithm 1: a fresh optimiser for every sub-step
                groups, schedule = new_groups, new_schedule
                optimizer = torch.optim.Adam(groups)
            for g in optimizer.param_groups:
                g["lr"] = stage.config.lr_at(step, total, g["base_lr"])
            loss, terms = self._train_step(stage, step, optimizer, schedule)
            step += 1
            done = step - start_step
            rate = (time.perf_counter() - stage_t0) / done
            yield self._log(TrainEvent("step", stage.name, number, step, total, loss=loss, terms=terms,
                                       lr=optimizer.param_groups[0]["lr"], elapsed_s=self.elapsed_s,
                                       eta_s=rate * (total - step), **stage.epoch_progress(step, total)))
            validate = step % stage.config.val_every == 0 or step == total
            if validate:
                yield self._log(self._validate(stage, step, total))
            if validate or step % cfg.checkpoint_every_steps == 0:
                self._save_state(stage, step, optimizer, d_opt)
        # restore the stage's best weights before the next stage (read by rank 0, sent to the others)
        self.processes.unwrap()
        best = self.files.read_best(MODEL_FILE) if progress.get("best") is not None else None
        if best is not None:
            self.model.load_state_dict(best.state_dict())
            self.model.to(self.device)
        self.processes.broadcast(self.model)
        # keep each stage's result (stage 1 alone = the all-optical baseline)
        self.files.copy(MODEL_FILE, f"stage{number}_{stage.name}.safetensors")
        progress.update(stage_index=progress["stage_index"] + 1, step=0, best=None, best_step=None)
        self._save_state(stage, 0, None, None)
        yield self._log(TrainEvent("stage_end", stage.name, number, total, total, elapsed_s=self.elapsed_s,
                                   message="finished"))
        return True

    def _time_is_up(self) -> bool:
        limit = self.config.max_minutes
        if limit is not None and self.invocation_elapsed_s > limit * 60:
            self._stop_reason = f"time budget of {limit:g} min reached"
            return True
        return False

    # ------------------------------------------------------------------ steps
    def _train_step(self, stage: Stage, step: int, optimizer, schedule):
        """One optimiser step; its data, noise and dropout are seeded by (seed, stage, step)."""
        cfg = self.config
        number = stage.number
        rng = D.step_rng(cfg.seed, number, step)
        torch.manual_seed(_seed_of(cfg.seed, number, step, 1))
        noise_gen = torch.Generator(device=self.device).manual_seed(_seed_of(cfg.seed, number, step, 2))
        optimizer.zero_grad(set_to_none=True)
        stage.before_step(step, stage.total_steps())
        loss, terms = self.processes.forward(lambda: stage.loss(rng, noise_gen, schedule))
        loss.backward()  # several processes: the gradients are averaged here (DDP)
        stage.after_backward(schedule)
        optimizer.step()
        stage.after_step()
        return self.processes.mean(loss, terms)

    # ------------------------------------------------------------------ validation & checkpoints
    def _validate(self, stage: Stage, step: int, total: int) -> TrainEvent:
        optics_kwargs, selectable = stage.validation_setting(step, total)
        metrics = stage.evaluate("val", optics_kwargs)
        if "n_active" in optics_kwargs:
            metrics["active_layers"] = optics_kwargs["n_active"]
        score = metrics[stage.score_key()]
        improved = selectable and stage.improves(score, self.progress.get("best"))
        entry = {"stage": stage.name, "step": step, **metrics}
        self.progress["history"].append(entry)
        if improved:
            self.progress.update(best=score, best_step=step)
            self._save_model(stage, step, metrics)
        return TrainEvent("validation", stage.name, stage.number, step, total,
                          metrics={**metrics, "improved": improved}, elapsed_s=self.elapsed_s,
                          path=str(self.out_dir / MODEL_FILE) if improved else None)

    def _card(self, stage: Stage | None, step: int | None, metrics: dict | None) -> dict:
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
            "perceptual_source": perceptual, **self.processes.record(),
            "wall_time_s": round(self.elapsed_s, 1),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    def _save_model(self, stage: Stage, step: int, metrics: dict) -> None:
        self.files.save_checkpoint(MODEL_FILE, self.model, self._card(stage, step, metrics))

    def _save_state(self, stage: Stage, step: int, optimizer, d_opt) -> None:
        self.progress.update(step=step, elapsed_s=self.elapsed_s)
        # resume checks the state belongs to these weights
        self.progress[WEIGHTS_DIGEST_KEY] = self.files.save_checkpoint(LAST_FILE, self.model,
                                                                       self._card(stage, step, None))
        opts = {}
        if optimizer is not None:
            opts["main"] = optimizer
        if d_opt is not None:
            opts["disc"] = d_opt
        mods = {"disc": self.discriminator} if (self.discriminator is not None and d_opt is not None) else None
        self.files.save_train_state(STATE_FILE, opts, self.progress, mods)

    def _finish(self):
        """Evaluate the final model once on the test split and write its card."""
        cfg = self.config
        best_path = self.out_dir / MODEL_FILE
        saved = self.files.read_card(MODEL_FILE)
        stage = build_stage(cfg.stages[-1], self)
        test = stage.evaluate("test")
        if cfg.system.modality == "fluorescence":
            recorded = self._initial_patterns()
            if recorded is not None:
                saved["initial_patterns"] = recorded
            report = patterns_report(self.model, saved)  # against the recorded start (or the seed's draw)
            protocol = (f"{len(self.test_set)} whole test fields (cut to whole pattern periods), binary patterns, "
                        f"{test.get('noise')} noise, evaluated once")
        else:
            report = optics_report(self.model, saved)
            protocol = (f"{len(self.test_patches)} fixed {cfg.data.patch_px}² patches "
                        f"({cfg.data.val_patches_per_side}×{cfg.data.val_patches_per_side} per field), evaluated once")
        card = {**saved, "test": test, "optics_report": report, "test_protocol": protocol,
            "wall_time_s": round(self.elapsed_s, 1), **self.processes.record()}
        self.files.save_checkpoint(MODEL_FILE, self.model, card)
        self.progress.update(finished=True)
        self.files.save_train_state(STATE_FILE, {}, self.progress)
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
