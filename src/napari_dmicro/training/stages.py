"""The training stages as objects: what trains, the loss of a step, validation and model selection.

The :class:`~napari_dmicro.training.trainer.Trainer` is a generic loop over stages; a stage changes it
by overriding methods (deepinv's trainer), not by string switches:

- :class:`OpticsStage` (1): the optics alone, L1 of the full-resolution detector intensity against φ/2π;
- :class:`ProgressiveOpticsStage` (1, layered optics): the paper's Algorithm 1 schedule;
- :class:`DecoderStage` (2): optics frozen, decoder on measurements simulated once (a
  :class:`~.measurement_pool.MeasurementPool`);
- :class:`EndToEndStage` (3): decoder (and optics unless frozen) through the differentiable acquisition.

Every measurement comes from the one acquisition (:class:`~napari_dmicro.optics.acquisition.Acquisition`),
and every training crop is exposed as part of the acquisition it is cut from (same photon reference as
the whole field: see docs/physics.md).
"""

from __future__ import annotations

import numpy as np
import torch

from ..metrics import ssim
from . import data as D
from .config import STAGE_NUMBERS, StageConfig
from .initial import seed_of
from .measurement_pool import MeasurementPool

_HIGHER_IS_BETTER = {"psnr": True, "ssim": True, "l1": False, "dice": True}
_METRIC_KEYS = {"l1": "l1", "psnr": "psnr_db", "ssim": "ssim", "dice": "dice"}


class Stage:
    """One training stage of a run (``trainer`` gives the model, data, device and seed)."""

    #: validate before the first step (the starting point of the stage is a candidate)
    validate_at_start = True
    #: the validation scores the all-optical image (stage 1) instead of the decoder's output
    optical = False

    def __init__(self, config: StageConfig, trainer):
        self.config = config
        self.trainer = trainer
        self.name = config.name
        self.number = STAGE_NUMBERS[config.name]
        self.select_on = config.select_on

    @property
    def model(self):
        return self.trainer.model

    def total_steps(self) -> int:
        return self.config.total_steps(len(self.trainer.train_set))

    def epoch_progress(self, step: int, total: int) -> dict:
        """Epoch fields of the event of completed step ``step`` (≥ 1): epoch, epochs, epoch_step,
        steps_per_epoch."""
        per_epoch = self.config.steps_per_epoch(len(self.trainer.train_set))
        epochs = max(-(-total // per_epoch), 1)
        return {"epoch": min((step - 1) // per_epoch + 1, epochs), "epochs": epochs,
                "epoch_step": (step - 1) % per_epoch + 1, "steps_per_epoch": per_epoch}

    # --------------------------------------------------------------- what trains
    def trains_optics(self) -> bool:
        return False

    def trains_decoder(self) -> bool:
        return False

    def param_groups(self, step: int, total: int) -> tuple[list[dict], object]:
        """Optimiser parameter groups at ``step`` and a schedule key: a new key starts a fresh optimiser."""
        raise NotImplementedError

    def setup(self) -> None:
        """Before the stage's first (or resumed) step: which parameters take gradients."""
        for p in self.model.optics_parameters():
            p.requires_grad_(self.trains_optics())
        for p in self.model.decoder_parameters():
            p.requires_grad_(self.trains_decoder())

    def auxiliary_optimizers(self) -> dict:
        """Optimisers besides the main one (saved and resumed with the run)."""
        return {}

    # --------------------------------------------------------------- one step
    def loss(self, rng: np.random.Generator, noise_gen: torch.Generator, schedule) -> tuple[torch.Tensor, dict]:
        raise NotImplementedError

    def after_backward(self, schedule) -> None:
        """Between backward and the optimiser step (e.g. gradient masks); by default the optional
        smoothing of the optics' gradients (``optics_grad_smoothing_px``; 0 in stage 2)."""
        smooth_optics_gradients(self.model, self.config.optics_grad_smoothing_px)

    def after_step(self) -> None:
        """After the optimiser step (e.g. a discriminator update)."""

    def before_step(self, step: int, total: int) -> None:
        """Before the loss of step ``step`` (e.g. the patterns' sharpness schedule)."""

    # --------------------------------------------------------------- validation
    def evaluate(self, split: str, optics_kwargs: dict | None = None) -> dict:
        """Metrics of the model on the fixed patches of ``split`` ("val" or "test")."""
        from .evaluation import evaluate_patches

        t = self.trainer
        fields, patches = (t.val_set, t.val_patches) if split == "val" else (t.test_set, t.test_patches)
        if split == "test" and not patches:
            return {}
        return evaluate_patches(self.model, fields, patches, t.config.data.patch_px, t.config.seed, t.device,
                                optical=True, decoder=split == "test" or not self.optical,
                                optics_kwargs=optics_kwargs)

    def validation_setting(self, step: int, total: int) -> tuple[dict, bool]:
        """Optics keyword arguments of the validation and whether the result may become the best model."""
        return {}, True

    def score_key(self) -> str:
        return ("optical_" if self.optical else "") + _METRIC_KEYS[self.select_on]

    def improves(self, score: float, best: float | None) -> bool:
        higher = _HIGHER_IS_BETTER[self.select_on]
        return best is None or (score > best if higher else score < best)

    # --------------------------------------------------------------- shared helpers
    def training_crops(self, rng, batch: int, *, shared: bool = True
                       ) -> tuple[D.TrainingPatches, torch.Tensor, torch.Tensor, int]:
        """Random crops with the optical context they need: (patches, regions, targets on device, context).
        The whole batch is drawn; with ``shared`` this process keeps its share of it (several processes)."""
        t = self.trainer
        cfg = t.config
        ctx = t.acquisition.context_px
        patches = D.sample_training_patches(t.train_set, rng, batch, cfg.data.patch_px, ctx, cfg.data.flips,
                                            outside=cfg.system.encoder.outside_field)
        if shared:
            patches = patches.take(t.processes.share(batch))
        return (patches, torch.from_numpy(patches.regions).to(t.device),
                torch.from_numpy(patches.targets).to(t.device), ctx)


class OpticsStage(Stage):
    """Stage 1: the optics alone; the detector intensity read as φ/2π (L1). With
    ``optics_objective="joint"`` the optics train together with the decoder from the start (L1 of the
    decoded phase), so they keep what a decoder needs instead of imitating φ/2π in intensity;
    ``freeze_optics`` then trains the decoder alone behind fixed (designed) optics."""

    validate_at_start = False

    def __init__(self, config, trainer):
        super().__init__(config, trainer)
        self.joint = config.optics_objective == "joint"
        self.optical = not self.joint

    def trains_optics(self) -> bool:
        return not self.config.freeze_optics

    def trains_decoder(self) -> bool:
        return self.joint

    def setup(self) -> None:
        super().setup()
        if self.joint:
            fit_fresh_normalization(self.trainer, lambda: self.normalization_sample())

    def normalization_sample(self) -> torch.Tensor:
        """Camera images of 16 training crops under the initial optics (fixed draw)."""
        _, regions, _, ctx = self.training_crops(np.random.default_rng(0), 16, shared=False)
        with torch.no_grad():
            return self.trainer.acquisition.camera_image(regions, ctx)

    def param_groups(self, step, total):
        cfg, m = self.config, self.model
        groups = []
        if self.joint:
            groups.append({"params": m.decoder_parameters(), "lr": cfg.lr, "base_lr": cfg.lr})
        if not cfg.freeze_optics:
            olr = (cfg.optics_lr or cfg.lr) * cfg.optics_lr_scale
            groups.append({"params": m.optics_parameters(), "lr": olr, "base_lr": olr})
        return groups, None

    def optics_kwargs(self, schedule) -> dict:
        return {}

    def loss(self, rng, noise_gen, schedule):
        if self.joint:
            pred, targets = decoded_crops(self, rng, noise_gen)
            loss = (pred - targets).abs().mean()
            return loss, {"l1": float(loss.detach())}
        _, regions, targets, ctx = self.training_crops(rng, self.config.batch_size)
        intensity = self.trainer.acquisition.detector_intensity(regions, ctx, **self.optics_kwargs(schedule))
        loss = (intensity - targets).abs().mean()
        return loss, {}


class ProgressiveOpticsStage(OpticsStage):
    """Stage 1 of layered optics (PhaseD2NN) with the paper's Algorithm 1: layer i alone, then layers
    1..i jointly, a fresh optimiser for every sub-step; only the complete network can be selected."""

    def __init__(self, config, trainer):
        super().__init__(config, trainer)
        self.n_layers = int(trainer.model.encoder.layer_count())

    def param_groups(self, step, total):
        cfg = self.config
        layer, joint = algorithm1_phase(step, total, self.n_layers)
        lr = cfg.joint_lr if joint else cfg.lr
        optics = self.model.encoder.optics
        masks = [p for p in (optics.phase_rad, optics.amplitude_logit) if p is not None]
        plr = cfg.power_lr or lr
        return [{"params": masks, "lr": lr, "base_lr": lr},
                {"params": [optics.power_logit], "lr": plr, "base_lr": plr}], (layer, joint)

    def optics_kwargs(self, schedule) -> dict:
        return {"n_active": schedule[0]}

    def after_backward(self, schedule) -> None:
        """Only the layer(s) of the sub-step learn; only the active layer's output power."""
        layer, joint = schedule
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

    def validation_setting(self, step, total):
        # score the network as trained so far (detector behind the active layer)
        layer, _ = algorithm1_phase(max(step - 1, 0), total, self.n_layers)
        return {"n_active": layer}, layer == self.n_layers


class DecoderStage(Stage):
    """Stage 2: optics frozen; the decoder learns from a pool of measurements simulated once."""

    def __init__(self, config, trainer):
        super().__init__(config, trainer)
        self.loss_fn = None
        self.discriminator = None
        self.d_opt = None
        self._pending = None

    def trains_decoder(self) -> bool:
        return True

    def param_groups(self, step, total):
        lr = self.config.lr
        return [{"params": self.model.decoder_parameters(), "lr": lr, "base_lr": lr}], None

    def setup(self) -> None:
        super().setup()
        t, stage = self.trainer, self.config
        if stage.perceptual_weight > 0 or stage.adversarial_weight > 0:
            from .losses import Stage2Loss, UNetDiscriminatorSN

            if stage.adversarial_weight > 0:
                with torch.random.fork_rng():  # seeded by (seed, stage) alone: the same on every process
                    torch.manual_seed(seed_of(t.config.seed, self.number, 0, 3))
                    self.discriminator = UNetDiscriminatorSN().to(t.device)
                self.d_opt = torch.optim.Adam(self.discriminator.parameters(), lr=stage.discriminator_lr)
            self.loss_fn = Stage2Loss(perceptual_weight=stage.perceptual_weight,
                                      adversarial_weight=stage.adversarial_weight,
                                      vgg_weights_path=t.config.vgg19_weights,
                                      discriminator=self.discriminator).to(t.device)
        t.discriminator, t.stage2_loss = self.discriminator, self.loss_fn
        self.pool = MeasurementPool(t)
        fit_fresh_normalization(t, self.pool.all_measurements)

    def auxiliary_optimizers(self) -> dict:
        return {"disc": self.d_opt} if self.d_opt is not None else {}

    def loss(self, rng, noise_gen, schedule):
        meas, targets = self.pool.sample(rng, self.config.batch_size, noise_gen)  # the whole batch, its noise
        mine = self.trainer.processes.share(self.config.batch_size)
        meas, targets = meas[mine], targets[mine]
        pred = self.model.decode(meas)
        if self.loss_fn is None:
            loss = (pred - targets).abs().mean()
            return loss, {"l1": float(loss.detach())}
        loss, terms = self.loss_fn(pred[:, None], targets[:, None])
        if self.discriminator is not None:
            self._pending = (targets[:, None], pred[:, None].detach(), terms)
        return loss, terms

    def after_step(self) -> None:
        """Update the discriminator after the generator's step (its graph used the old weights)."""
        if self._pending is None:
            return
        from .losses import discriminator_loss

        real, fake, terms = self._pending
        self._pending = None
        self.d_opt.zero_grad(set_to_none=True)
        d_loss = discriminator_loss(self.discriminator, real, fake)
        d_loss.backward()
        self.d_opt.step()
        terms["discriminator"] = float(d_loss.detach())


class EndToEndStage(Stage):
    """Stage 3: decoder and (unless frozen) optics through the differentiable acquisition."""

    def trains_optics(self) -> bool:
        return not self.config.freeze_optics

    def trains_decoder(self) -> bool:
        return True

    def param_groups(self, step, total):
        stage, m = self.config, self.model
        groups = [{"params": m.decoder_parameters(), "lr": stage.lr, "base_lr": stage.lr}]
        if not stage.freeze_optics:
            olr = (stage.optics_lr or stage.lr) * stage.optics_lr_scale
            groups.append({"params": m.optics_parameters(), "lr": olr, "base_lr": olr})
        return groups, None

    def loss(self, rng, noise_gen, schedule):
        pred, targets = decoded_crops(self, rng, noise_gen)
        terms, loss = {}, torch.zeros((), device=self.trainer.device)
        if self.config.loss in ("l1", "l1_ssim"):
            l1 = (pred - targets).abs().mean()
            terms["l1"] = float(l1.detach())
            loss = loss + l1
        if self.config.loss in ("ssim", "l1_ssim"):
            s = ssim(pred, targets).mean()
            terms["ssim"] = float(s.detach())
            loss = loss + (1 - s)
        return loss, terms


def decoded_crops(stage: Stage, rng, noise_gen) -> tuple[torch.Tensor, torch.Tensor]:
    """(decoded φ/2π, targets) of a batch of training crops through the differentiable acquisition."""
    t = stage.trainer
    acq = t.acquisition
    patches, regions, targets, ctx = stage.training_crops(rng, stage.config.batch_size)
    camera = acq.camera_image(regions, ctx)
    reference = crop_references(t, patches.sources) if acq.noisy else None
    meas = t.processes.expose(acq, camera, "differentiable", noise_gen, reference, stage.config.batch_size)
    return stage.model.decode(meas), targets


def smooth_optics_gradients(model, sigma_px: float) -> None:
    """Blur the gradients of the optics' masks (last two axes) with a Gaussian of ``sigma_px`` mask pixels.

    Each frequency bin of a random mask sees a gradient whose sign changes from batch to batch; Adam
    gives every bin the same step, so most bins random-walk. Blurring lets neighbours share evidence
    (a smooth preconditioner; the parametrisation and the checkpoints are unchanged). 0: nothing."""
    if not sigma_px:
        return
    radius = max(int(round(3 * sigma_px)), 1)
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (x / sigma_px) ** 2)
    kernel = kernel / kernel.sum()
    for p in model.optics_parameters():
        if p.grad is None or p.ndim < 2:
            continue
        g = p.grad.reshape(-1, 1, *p.grad.shape[-2:])
        k = kernel.to(g.device, g.dtype)
        g = torch.nn.functional.conv2d(torch.nn.functional.pad(g, (radius, radius, 0, 0), mode="reflect"),
                                       k.view(1, 1, 1, -1))
        g = torch.nn.functional.conv2d(torch.nn.functional.pad(g, (0, 0, radius, radius), mode="reflect"),
                                       k.view(1, 1, -1, 1))
        p.grad = g.reshape(p.grad.shape)


def fit_fresh_normalization(trainer, sample) -> bool:
    """A new decoder (no init decoder, identity normalisation): normalise its input to the statistics of
    typical camera images (``sample()``); a decoder that already has a normalisation keeps it. Returns
    whether the decoder was fresh."""
    cfg, model = trainer.config, trainer.model
    fresh = ((cfg.init is None or not cfg.init_decoder) and float(model.meas_offset) == 0
             and float(model.meas_scale) == 1)
    if fresh:
        model.fit_measurement_normalization(sample())
    return fresh


def crop_references(trainer, sources: list[tuple[int, bool, bool]]) -> torch.Tensor | None:
    """Photon references (B,) of training crops: that of the whole (flipped) field each was cut from,
    under the current optics (None when every crop is its own exposure)."""
    acq, fields = trainer.acquisition, trainer.train_set.fields
    seen: dict[tuple[int, bool, bool], float | None] = {}
    for source in sources:
        if source not in seen:
            k, fr, fc = source
            seen[source] = acq.photon_reference(D.flip(fields[k], fr, fc), device=trainer.device)
    refs = [seen[s] for s in sources]
    if any(r is None for r in refs):
        return None
    return torch.tensor(refs, dtype=torch.float32, device=trainer.device)


class FluorescenceStage(Stage):
    """A fluorescence stage: random crops of the training fields (images in [0, 1] and labels), measured
    through the illumination patterns (soft with the sharpness schedule while the patterns train, BINARY
    when they are fixed: a frozen or designed set is trained exactly as deployed), differentiable Poisson
    + read noise when the detector has photons. Validation and test: binary patterns, exact noise, whole
    fields (:func:`~.fluo_data.evaluate_fluorescence`)."""

    #: the decoder's parameters this stage trains: "all" or "seg" (the segmentation head alone)
    decoder_part = "all"

    def __init__(self, config, trainer):
        super().__init__(config, trainer)
        self.seg_loss = None
        if config.loss in ("dice_bce", "l1_dice_bce"):
            from .losses import SegmentationLoss

            if not trainer.model.has_seg_head:
                raise ValueError(f"stage {config.name} trains segmentation but the decoder has no segmentation "
                                 "head; use a decoder with seg_head (e.g. the 'locality-seg' preset)")
            if not all(trainer.train_set.has_labels):
                missing = [p.name for p, ok in zip(trainer.train_set.paths, trainer.train_set.has_labels,
                                                   strict=True) if not ok][:3]
                raise ValueError(f"stage {config.name} needs instance labels; training fields without labels: "
                                 f"{missing}; generate fields with dmicro phantom --modality fluorescence")
            self.seg_loss = SegmentationLoss()

    def trains_optics(self) -> bool:
        return self.name != "seg_head" and not self.config.freeze_optics

    def trains_decoder(self) -> bool:
        return True

    def _decoder_params(self) -> list:
        if self.decoder_part == "seg":
            return list(self.model.decoder.seg.parameters())
        return self.model.decoder_parameters()

    def setup(self) -> None:
        for p in self.model.optics_parameters():
            p.requires_grad_(self.trains_optics() and self.model.config.encoder.patterns.learnable)
        for p in self.model.decoder_parameters():
            p.requires_grad_(False)
        for p in self._decoder_params():
            p.requires_grad_(True)
        if self.number == 1 and fit_fresh_normalization(self.trainer, self.normalization_sample):
            # a fresh decoder starts as the least-squares inverse of the patterns it will first see
            self.model.init_decoder_from_patterns(binary=not self.trains_optics())

    def normalization_sample(self) -> torch.Tensor:
        images, _ = self.crops(np.random.default_rng(0), 16)
        with torch.no_grad():
            return self.model.measure(images, binary=not self.trains_optics())

    def param_groups(self, step, total):
        cfg = self.config
        groups = [{"params": self._decoder_params(), "lr": cfg.lr, "base_lr": cfg.lr}]
        if self.trains_optics() and self.model.config.encoder.patterns.learnable:
            olr = (cfg.optics_lr or cfg.lr) * cfg.optics_lr_scale
            groups.append({"params": self.model.optics_parameters(), "lr": olr, "base_lr": olr})
        return groups, None

    def before_step(self, step: int, total: int) -> None:
        """Step the sharpness schedule (monotone: a value below the current sharpness is not applied)."""
        if self.config.sharpness is None or not self.trains_optics():
            return
        from ..fluorescence import SharpnessSchedule

        start, end = self.config.sharpness
        value = SharpnessSchedule(start, end, max(total, 1)).value(step)
        if value >= float(self.model.encoder.sharpness):
            self.model.encoder.set_sharpness(value)

    def crops(self, rng, batch: int) -> tuple[torch.Tensor, np.ndarray]:
        from .fluo_data import sample_crops

        t = self.trainer
        images, labels = sample_crops(t.train_set, rng, batch, t.config.data.patch_px, t.config.data.flips)
        return torch.from_numpy(images).to(t.device), labels

    def loss(self, rng, noise_gen, schedule):
        from .losses import segmentation_targets

        t = self.trainer
        images, labels = self.crops(rng, self.config.batch_size)
        mine = t.processes.share(self.config.batch_size)
        images, labels = images[mine], labels[mine]
        noise = "differentiable" if self.model.config.encoder.detector.noisy else "none"
        meas = self.model.measure(images, noise=noise, generator=noise_gen, binary=not self.trains_optics())
        pred, logits = self.model.decode_all(meas)
        terms, loss = {}, torch.zeros((), device=t.device)
        if self.config.loss in ("l1", "l1_dice_bce"):
            l1 = (pred - images).abs().mean()
            terms["l1"] = float(l1.detach())
            loss = loss + l1
        if self.seg_loss is not None:
            seg, seg_terms = self.seg_loss(logits, segmentation_targets(labels).to(t.device))
            terms.update(dice_loss=seg_terms["dice"], bce=seg_terms["bce"])
            loss = loss + seg
        terms["sharpness"] = float(self.model.encoder.sharpness)
        return loss, terms

    def evaluate(self, split: str, optics_kwargs: dict | None = None) -> dict:
        from .fluo_data import evaluate_fluorescence

        t = self.trainer
        return evaluate_fluorescence(self.model, t.val_set if split == "val" else t.test_set, t.config.seed,
                                     t.device)


class SegmentationHeadStage(FluorescenceStage):
    """Task-aware step 2: patterns and the reconstruction network fixed, the segmentation head learns."""

    decoder_part = "seg"


def build_stage(config: StageConfig, trainer) -> Stage:
    """The stage object of a stage configuration."""
    if config.name in ("reconstruct", "seg_joint"):
        return FluorescenceStage(config, trainer)
    if config.name == "seg_head":
        return SegmentationHeadStage(config, trainer)
    if config.name == "optics":
        layered = trainer.model.encoder.layer_count() is not None
        return ProgressiveOpticsStage(config, trainer) if config.progressive_layers and layered \
            else OpticsStage(config, trainer)
    return {"decoder": DecoderStage, "end_to_end": EndToEndStage}[config.name](config, trainer)


def algorithm1_phase(step: int, total: int, n_layers: int) -> tuple[int, bool]:
    """The paper's Algorithm 1 as a function of the step: layer i alone, then layers 1..i jointly.

    The stage's steps are split evenly over the 2n − 1 sub-steps (layer 1 has no joint sub-step).
    Returns (number of active layers, joint?).
    """
    phases = [(1, False)] + [(i, joint) for i in range(2, n_layers + 1) for joint in (False, True)]
    index = min(int(step * len(phases) / max(total, 1)), len(phases) - 1)
    return phases[index]
