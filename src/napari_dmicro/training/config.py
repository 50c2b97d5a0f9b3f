"""Training configuration: the three stages of the paper (section 2.1), data and run settings.

Stage names: ``optics`` (1: all-optical, L1 of the full-resolution detector intensity against φ/2π),
``decoder`` (2: optics frozen, L1 + perceptual + adversarial), ``end_to_end`` (3: −SSIM, low learning
rates). Budgets are step counts so that the same seed and data give the same numbers; a CPU budget's
expected wall time is recorded beside it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ..config import _Config
from ..system import FluorescenceSystemConfig, SystemConfig

StageName = Literal["optics", "decoder", "end_to_end", "reconstruct", "seg_head", "seg_joint"]
STAGE_NUMBERS: dict[str, int] = {"optics": 1, "decoder": 2, "end_to_end": 3,
                                 # fluorescence: reconstruction (patterns + decoder), then task-aware segmentation
                                 "reconstruct": 1, "seg_head": 2, "seg_joint": 3}
#: the stages of each modality
MODALITY_STAGES: dict[str, frozenset[str]] = {"qpm": frozenset({"optics", "decoder", "end_to_end"}),
                                              "fluorescence": frozenset({"reconstruct", "seg_head", "seg_joint"})}
#: what each fluorescence stage may use as its loss
_FLUO_LOSSES = {"reconstruct": ("l1",), "seg_head": ("dice_bce",), "seg_joint": ("dice_bce", "l1_dice_bce")}


class StageConfig(_Config):
    """One training stage. ``milestones`` are fractions of ``steps`` where the learning rate × ``gamma``."""

    name: StageName
    steps: int | None = Field(None, ge=0, description="optimiser steps (or give epochs)")
    epochs: float | None = Field(None, gt=0, description="passes over the training fields, one patch each")
    batch_size: int = Field(ge=1)
    lr: float = Field(gt=0, description="learning rate of the trained part (decoder in stage 3)")
    optics_lr: float | None = Field(None, gt=0, description="stages 1 and 3: learning rate of the optics "
                                    "(default: lr)")
    milestones: tuple[float, ...] = ()
    gamma: float = Field(0.1, gt=0, le=1)
    val_every: int = Field(100, ge=1, description="validate every this many steps (and at the end)")
    loss: Literal["l1", "l1_perceptual_adversarial", "ssim", "l1_ssim", "dice_bce", "l1_dice_bce"] = "l1"
    perceptual_weight: float = Field(0.0, ge=0)
    adversarial_weight: float = Field(0.0, ge=0)
    discriminator_lr: float = Field(1e-4, gt=0)
    select_on: Literal["l1", "psnr", "ssim", "dice"] = "psnr"
    sharpness: tuple[float, float] | None = Field(None, description="fluorescence stages that train the patterns: "
                                                  "(start, end) of the geometric sharpness schedule over the stage "
                                                  "(never decreasing; default: the patterns' current sharpness)")
    progressive_layers: bool = Field(False, description="stage 1 PhaseD2NN: Algorithm 1 schedule")
    joint_lr: float = Field(5e-5, gt=0, description="Algorithm 1: learning rate of joint sub-steps")
    power_lr: float | None = Field(None, gt=0, description="Algorithm 1: learning rate of the layer powers "
                                   "P_i (default: that of the layers)")
    freeze_optics: bool = Field(False, description="stage 1 and 3: keep the optics fixed (a designed or built "
                                "microscope; stage 1 then only trains the decoder under objective 'joint')")
    optics_objective: Literal["phase_intensity", "joint"] = Field(
        "phase_intensity", description="stage 1: 'phase_intensity' = L1 of the detector intensity against φ/2π "
        "(the paper; pushes towards a level encoding that folds above ~π); 'joint' = L1 of the decoder's output "
        "through the optics, optics and decoder trained together from the start (keeps what the decoder needs)")
    optics_grad_smoothing_px: float = Field(0.0, ge=0, le=64, description="stages 1 and 3: σ (mask pixels) of a "
                                            "Gaussian blur of the optics' gradients before the optimiser step: "
                                            "neighbouring frequency bins share their evidence (0: off)")
    optics_lr_scale: float = Field(1.0, gt=0, description="stages 1 and 3: the optics' learning rate "
                                   "(optics_lr, or lr) × this")

    @model_validator(mode="after")
    def _consistent(self):
        if any(not 0 < m < 1 for m in self.milestones):
            raise ValueError(f"milestones {self.milestones} must be fractions of the stage in (0, 1)")
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"stage {self.name}: give exactly one of steps or epochs")
        if self.name in _FLUO_LOSSES and self.loss not in _FLUO_LOSSES[self.name]:
            raise ValueError(f"fluorescence stage {self.name} uses the loss {' or '.join(_FLUO_LOSSES[self.name])}; "
                             f"got {self.loss!r}")
        if (self.select_on == "dice") != (self.name in ("seg_head", "seg_joint")):
            raise ValueError(f"stage {self.name}: select_on='dice' is for the segmentation stages (seg_head, "
                             "seg_joint), which select on it")
        if self.sharpness is not None:
            if self.name not in ("reconstruct", "seg_joint"):
                raise ValueError("sharpness schedules belong to fluorescence stages that train the patterns "
                                 "(reconstruct, seg_joint)")
            if not 0 < self.sharpness[0] <= self.sharpness[1]:
                raise ValueError(f"sharpness {self.sharpness} must be (start, end) with 0 < start <= end: the "
                                 "patterns only become sharper")
        if self.name == "optics" and self.loss != "l1":
            raise ValueError("stage 1 (optics) uses the L1 phase-to-intensity loss of the paper")
        if self.progressive_layers and self.optics_objective == "joint":
            raise ValueError("Algorithm 1 (progressive_layers) trains the optics alone: use "
                             "optics_objective='phase_intensity' with it")
        if self.name == "optics" and self.freeze_optics and self.optics_objective != "joint":
            raise ValueError("stage 1 with frozen optics trains nothing unless optics_objective='joint'; "
                             "drop stage 1 (e.g. --stages 2,3) to train a decoder behind fixed optics")
        if self.name == "decoder" and (self.optics_objective != "phase_intensity" or self.optics_lr_scale != 1
                                       or self.optics_grad_smoothing_px):
            raise ValueError("stage 2 keeps the optics fixed: optics_objective, optics_lr_scale and "
                             "optics_grad_smoothing_px are for stages 1 and 3")
        return self

    def steps_per_epoch(self, n_train_fields: int) -> int:
        """An epoch is one patch from every training field (drop_last batches), at least one step."""
        return max(n_train_fields // self.batch_size, 1)

    def total_steps(self, n_train_fields: int) -> int:
        """Steps of this stage (``steps``, or ``epochs`` × steps per epoch)."""
        if self.steps is not None:
            return self.steps
        return int(round(self.epochs * self.steps_per_epoch(n_train_fields)))

    def lr_at(self, step: int, total_steps: int, base: float | None = None) -> float:
        """Multi-step schedule as a pure function of the step (so resuming needs no scheduler state)."""
        base = self.lr if base is None else base
        done = step / max(total_steps, 1)
        return base * self.gamma ** sum(1 for m in self.milestones if done >= m)


class DataConfig(_Config):
    """How fields become training patches. Splits are by field of view, never by crop."""

    patch_px: int = Field(256, ge=16)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)
    val_patches_per_side: int = Field(3, ge=1, description="fixed grid of n×n validation/test patches per field")
    flips: bool = True
    d2nn_bank_size: int = Field(256, ge=1, description="stage 2 PhaseD2NN: simulated patches kept in memory")
    # issue 10: every option below is off by default, so existing runs resume and reproduce unchanged
    phase_reference: Literal["absolute", "background"] = Field(
        "absolute", description="targets: φ mod 2π ('absolute') or background-referenced, unwrapped phase "
        "('background', docs/physics.md); both divided by 2π")
    extra_data: tuple[str, ...] = Field((), description="more folders of fields, added to the training split")
    extra_data_weight: float | None = Field(None, ge=0, le=1, description="probability that a training crop "
                                            "comes from the extra folders (None: in proportion to field count)")
    rotations: bool = Field(False, description="90° rotations of training crops (with flips: all 8 orientations)")
    amplitude_scale: tuple[float, float] | None = Field(None, description="log-uniform factor on a training "
                                                        "crop's amplitude (e.g. (0.25, 4); tests the flat field)")
    phase_scale: tuple[float, float] | None = Field(None, description="uniform factor on a training crop's "
                                                    "background-referenced phase (e.g. (0.7, 1.4))")
    thick_weight: float = Field(0.0, ge=0, description="crops kept with probability ∝ 1 + w·(fraction of "
                                "target pixels above thick_threshold_rad)")
    thick_threshold_rad: float = Field(3.0, gt=0)

    @model_validator(mode="after")
    def _augmentations(self):
        for name in ("amplitude_scale", "phase_scale"):
            lo_hi = getattr(self, name)
            if lo_hi is not None and not 0 < lo_hi[0] <= lo_hi[1]:
                raise ValueError(f"{name} {lo_hi} must be (low, high) with 0 < low <= high")
        if self.phase_scale is not None and self.phase_reference != "background":
            raise ValueError("phase_scale multiplies the phase relative to the background: it needs "
                             "phase_reference='background' (with absolute phase it would scale the offset too)")
        if self.extra_data_weight is not None and not self.extra_data:
            raise ValueError("extra_data_weight needs extra_data folders")
        return self


class TrainConfig(_Config):
    """Everything that defines a run; stored in the run folder and in every checkpoint's card."""

    preset: str | None = None
    budget: Literal["cpu", "paper", "custom"] = "custom"
    system: SystemConfig | FluorescenceSystemConfig
    stages: tuple[StageConfig, ...]
    data: DataConfig = DataConfig()
    seed: int = 0
    init: str | None = Field(None, description="shipped model name or checkpoint to start from")
    init_decoder: bool = Field(True, description="False: take only the init's optics and train a new decoder")
    optics_init: Literal["random", "all_pass", "zernike", "knife_edge", "dpc", "hadamard", "uniform"] = Field(
        "random", description="how the optics start when there is no init checkpoint: the paper's random masks, "
        "or a designed Fourier filter (LFF only; see optics/designed_filters.py); fluorescence: the patterns' "
        "init (random, hadamard, uniform), which must equal the encoder's patterns.init")
    vgg19_weights: str | None = Field(None, description="safetensors file with ImageNet VGG19 weights")
    device: str = "cpu"
    checkpoint_every_steps: int = Field(25, ge=1)
    max_minutes: float | None = Field(None, gt=0, description="stop (and keep the best model) after this")

    @model_validator(mode="after")
    def _stage_order(self):
        modality = self.system.modality
        foreign = [s.name for s in self.stages if s.name not in MODALITY_STAGES[modality]]
        if foreign:
            raise ValueError(f"stages {foreign} do not belong to a {modality} microscope; its stages are "
                             f"{sorted(MODALITY_STAGES[modality])}")
        if modality == "fluorescence" and self.optics_init != self.system.encoder.patterns.init:
            raise ValueError(f"optics_init {self.optics_init!r} differs from the patterns' init "
                             f"{self.system.encoder.patterns.init!r}; set both (train_config does)")
        if modality == "qpm" and self.optics_init in ("hadamard", "uniform"):
            raise ValueError(f"optics_init {self.optics_init!r} is a fluorescence pattern init")
        numbers = [STAGE_NUMBERS[s.name] for s in self.stages]
        if numbers != sorted(numbers) or len(set(numbers)) != len(numbers):
            raise ValueError(f"stages must be distinct and in order 1, 2, 3; got {numbers}")
        if not self.stages:
            raise ValueError("no stage to run; choose at least one of --stages 1,2,3")
        if not self.init_decoder and 2 not in numbers:
            raise ValueError("a new decoder starts untrained: include stage 2 (--stages 2 or 2,3)")
        return self
