"""Named training presets: ``lff-x64``, ``lff-x256``, ``d2nn-x64``, each with two budgets.

- ``paper``: the paper's schedule (section 5): batch 32; stage 1 LFF Adam 0.1 for 1500 epochs with
  milestones [50, 400, 650, 1000, 1400] × 0.1, PhaseD2NN Adam 0.001 for each step of Algorithm 1 with
  joint steps at 5e-5; stage 2 the SwinIR recipe (Adam 1e-4, L1 + perceptual + 0.1·GAN; 890 epochs in the
  authors' notebook); stage 3 −SSIM at 5e-6 for 24000 (LFF) or 3000 (PhaseD2NN) epochs. The paper's
  decoder (SwinIR embed 180, 6×6, progressive upsampler).
- ``cpu``: what fits a laptop CPU (2 cores) in the minutes given in the preset; a fast SwinIR with a
  single PixelShuffle, stage 2 with L1 only (the perceptual and adversarial terms cost more than the
  whole decoder on a CPU; they stay available with the paper budget or custom weights), short stages.
  Every CPU budget's wall time is measured in docs/benchmarks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import DetectorConfig, DiffractiveConfig, EncoderConfig, FourierFilterConfig
from ..decoders import decoder_config
from ..fluorescence import FluorescenceDetectorConfig, FluorescenceEncoderConfig, PatternConfig, PSFConfig
from ..system import FluorescenceSystemConfig, SystemConfig
from .config import STAGE_NUMBERS, DataConfig, StageConfig, TrainConfig

_PAPER_LFF_MILESTONES = tuple(m / 1500 for m in (50, 400, 650, 1000, 1400))


@dataclass(frozen=True)
class TrainingPreset:
    name: str
    description: str
    encoder: EncoderConfig | FluorescenceEncoderConfig
    cpu_decoder: str
    paper_decoder: str
    cpu_stages: tuple[StageConfig, ...]
    paper_stages: tuple[StageConfig, ...]
    cpu_minutes: float  # wall time of the CPU budget on 2 cores (benchmarks/results/training_*.json)
    data: DataConfig = DataConfig()
    optics_init: str = "random"  # TrainConfig.optics_init of the preset

    def system(self, budget: str) -> SystemConfig | FluorescenceSystemConfig:
        name = self.paper_decoder if budget == "paper" else self.cpu_decoder
        return system_with_decoder(self.encoder, name)

    def stages(self, budget: str) -> tuple[StageConfig, ...]:
        if budget not in ("cpu", "paper"):
            raise ValueError(f"unknown budget {budget!r}; use cpu or paper")
        return self.paper_stages if budget == "paper" else self.cpu_stages


def system_with_decoder(encoder, decoder: str) -> SystemConfig | FluorescenceSystemConfig:
    """The system of ``encoder`` with the decoder preset ``decoder`` built to fit it (QPM: upscale = binning;
    fluorescence: upscale = bin, in_chans = patterns, period_bins = the patterns' period)."""
    if isinstance(encoder, FluorescenceEncoderConfig):
        return FluorescenceSystemConfig(encoder=encoder, decoder=decoder_config(
            decoder, encoder.detector.bin_px, in_chans=encoder.patterns.n_patterns,
            period_bins=encoder.patterns.period_bins))
    return SystemConfig(encoder=encoder, decoder=decoder_config(decoder, encoder.detector.binning))


def _paper_stage2(epochs: float = 890) -> StageConfig:
    return StageConfig(name="decoder", epochs=epochs, batch_size=32, lr=1e-4,
                       loss="l1_perceptual_adversarial", perceptual_weight=1.0, adversarial_weight=0.1,
                       discriminator_lr=1e-4, val_every=500, select_on="psnr")


def _paper_stage3(epochs: float) -> StageConfig:
    return StageConfig(name="end_to_end", epochs=epochs, batch_size=32, lr=5e-6, optics_lr=5e-6,
                       loss="ssim", val_every=1000, select_on="ssim")


def _lff_preset(compression: int, cpu_minutes: float, stage2_steps: int, patch_px: int = 256) -> TrainingPreset:
    encoder = EncoderConfig(optics=FourierFilterConfig(), detector=DetectorConfig(compression=compression))
    cpu = (
        StageConfig(name="optics", steps=300, batch_size=8, lr=0.1, milestones=(0.5,), val_every=100,
                    select_on="l1"),
        StageConfig(name="decoder", steps=stage2_steps, batch_size=16, lr=1e-3, milestones=(0.6, 0.85),
                    gamma=0.3, loss="l1", val_every=200, select_on="psnr"),
        StageConfig(name="end_to_end", steps=400, batch_size=8, lr=5e-5, optics_lr=5e-4, loss="l1_ssim",
                    val_every=100, select_on="psnr"),
    )
    paper = (
        StageConfig(name="optics", epochs=1500, batch_size=32, lr=0.1, milestones=_PAPER_LFF_MILESTONES,
                    val_every=500, select_on="l1"),
        _paper_stage2(),
        _paper_stage3(24000),
    )
    return TrainingPreset(
        name=f"lff-x{compression}",
        description=f"learnable Fourier filter (4f, linear convolution) at x{compression}",
        encoder=encoder, cpu_decoder="swinir-fast", paper_decoder="swinir-paper",
        cpu_stages=cpu, paper_stages=paper, cpu_minutes=cpu_minutes, data=DataConfig(patch_px=patch_px))


def _d2nn_preset() -> TrainingPreset:
    encoder = EncoderConfig(optics=DiffractiveConfig(), detector=DetectorConfig(compression=64))
    cpu = (
        StageConfig(name="optics", steps=720, batch_size=4, lr=0.01, joint_lr=5e-4, power_lr=0.1, val_every=120,
                    progressive_layers=True, select_on="l1"),
        StageConfig(name="decoder", steps=1500, batch_size=16, lr=2e-3, milestones=(0.6, 0.85), gamma=0.3,
                    loss="l1", val_every=250, select_on="psnr"),
        StageConfig(name="end_to_end", steps=40, batch_size=4, lr=5e-5, optics_lr=1e-4, loss="l1_ssim",
                    val_every=20, select_on="psnr"),
    )
    paper = (
        StageConfig(name="optics", epochs=1500 * 9, batch_size=32, lr=1e-3, joint_lr=5e-5,
                    progressive_layers=True, val_every=2000, select_on="l1"),
        _paper_stage2(),
        _paper_stage3(3000),
    )
    return TrainingPreset(
        name="d2nn-x64", description="5-layer PhaseD2NN (λ/2 neurons, 256² aperture) at x64",
        encoder=encoder, cpu_decoder="swinir-fast", paper_decoder="swinir-paper",
        cpu_stages=cpu, paper_stages=paper, cpu_minutes=30,
        # stage 2 draws from a bank of patches imaged once (0.2 s each on 2 cores): 1024 ≈ 16 per field
        data=DataConfig(d2nn_bank_size=1024))


#: stage 1 under the joint objective: the decoder's learning rate (the optics keep the stage's lr as optics_lr)
JOINT_DECODER_LR = 1e-3


#: issue 10's data rule: what a microscope cannot know is augmented away — illumination (flat field + amplitude
#: scale) and the phase level (background-referenced targets, phase scale); thick crops are sampled more often
_INVARIANT_DATA = {"phase_reference": "background", "rotations": True, "amplitude_scale": (0.25, 4.0),
                   "phase_scale": (0.7, 1.4), "thick_weight": 5.0}


def _issue10_recipe(v1: TrainingPreset, *, name: str, description: str, cpu: tuple[StageConfig, ...],
                    cpu_minutes: float, optics_init: str) -> TrainingPreset:
    """``v1``'s optics and paper budget with issue 10's recipe: a flat-field camera, the dilated decoder that
    sees whole cells, the invariance augmentations, the given CPU stages and designed start."""
    return TrainingPreset(
        name=name, description=description,
        encoder=EncoderConfig(optics=v1.encoder.optics,
                              detector=v1.encoder.detector.model_copy(update={"flat_field": True})),
        cpu_decoder="conv-dilated", paper_decoder="swinir-paper", cpu_stages=cpu, paper_stages=v1.paper_stages,
        cpu_minutes=cpu_minutes, optics_init=optics_init, data=v1.data.model_copy(update=_INVARIANT_DATA))


#: measured wall minutes of the v2 CPU budgets (2 cores shared with two other trainings: an upper bound)
_V2_MINUTES = {64: 110, 256: 89}


def _lff_v2_preset(compression: int) -> TrainingPreset:
    """The issue-10 recipe of the shipped LFF models: the designed DPC filter as the start (the best designed
    filter and the best start at equal budget; docs/benchmarks.md, learned vs designed), stage 1 trains optics
    and the dilated decoder jointly (L1 of the decoded phase), a 10x larger stage-3 optics learning rate than
    v1."""
    cpu = (
        StageConfig(name="optics", steps=600, batch_size=8, lr=JOINT_DECODER_LR, optics_lr=0.05,
                    optics_objective="joint", milestones=(0.7,), gamma=0.3, val_every=100, select_on="psnr"),
        StageConfig(name="decoder", steps=3000, batch_size=16, lr=1e-3, milestones=(0.6, 0.85), gamma=0.3,
                    loss="l1", val_every=250, select_on="psnr"),
        StageConfig(name="end_to_end", steps=800, batch_size=8, lr=5e-5, optics_lr=5e-3, loss="l1_ssim",
                    val_every=100, select_on="psnr"),
    )
    return _issue10_recipe(
        _lff_preset(compression, 45, 2400), name=f"lff-x{compression}-v2",
        description=f"learnable Fourier filter at x{compression} from a DPC start, stage 1 joint with a "
                    "dilated decoder that sees whole cells (issue 10)",
        cpu=cpu, cpu_minutes=_V2_MINUTES.get(compression, 120), optics_init="dpc")


def _d2nn_v2_preset() -> TrainingPreset:
    """The issue-10 recipe of the shipped PhaseD2NN: layers start flat (all-pass: the camera sees the specimen
    after ~24 µm of free space, a defocus that turns phase into intensity contrast, as in transport-of-
    intensity imaging) instead of random diffusers; stage 1 trains the layers jointly with the dilated
    decoder (L1 of the decoded phase) instead of Algorithm 1's "intensity ≈ φ/2π"."""
    cpu = (
        StageConfig(name="optics", steps=400, batch_size=4, lr=JOINT_DECODER_LR, optics_lr=0.01,
                    optics_objective="joint", milestones=(0.7,), gamma=0.3, val_every=100, select_on="psnr"),
        StageConfig(name="decoder", steps=1500, batch_size=16, lr=1e-3, milestones=(0.6, 0.85), gamma=0.3,
                    loss="l1", val_every=250, select_on="psnr"),
        StageConfig(name="end_to_end", steps=100, batch_size=4, lr=5e-5, optics_lr=1e-3, loss="l1_ssim",
                    val_every=25, select_on="psnr"),
    )
    return _issue10_recipe(
        _d2nn_preset(), name="d2nn-x64-v2",
        description="5-layer PhaseD2NN at x64 from flat layers, stage 1 joint with a dilated decoder (issue 10)",
        cpu=cpu, cpu_minutes=79, optics_init="all_pass")


#: photons per specimen pixel of density 1 under one full pattern, in the fluorescence presets (stated; a
#: 20x/0.75 widefield nuclear stain gives of the order of 10²–10³ per 0.325 µm pixel and frame)
FLUO_PHOTONS_PER_UNIT = 100.0
FLUO_READ_NOISE_E = 2.0


def fluorescence_encoder(bin_px: int, n_patterns: int = 4, *, init: str = "random", learnable: bool = True,
                         photons_per_unit: float = FLUO_PHOTONS_PER_UNIT) -> FluorescenceEncoderConfig:
    """The fluorescence microscope of the presets: 0.325 µm DMD/specimen pixels (20x/0.75 on a 6.5 µm camera),
    one-bin periodic patterns from a random start, Gaussian excitation (NA 0.75, 488 nm) and emission (NA
    0.75, 520 nm) PSFs, Poisson noise at :data:`FLUO_PHOTONS_PER_UNIT` and 2 e⁻ read noise."""
    psf = dict(kind="gaussian", na=0.75)
    return FluorescenceEncoderConfig(
        patterns=PatternConfig(n_patterns=n_patterns, period_bins=1, init=init, learnable=learnable),
        excitation=PSFConfig(**psf, wavelength_um=0.488), emission=PSFConfig(**psf, wavelength_um=0.52),
        detector=FluorescenceDetectorConfig(bin_px=bin_px, photons_per_unit=photons_per_unit,
                                            read_noise_e=FLUO_READ_NOISE_E))


#: patterns per acquisition of the compressed fluorescence presets (every pattern set delivers T·0.5)
FLUO_PATTERNS = 4


def _fluo_reconstruct(steps: int, batch: int, val_every: int) -> StageConfig:
    """Patterns and decoder jointly (L1), sharpness 2 → 64 over the stage; the decoder's lr decays x0.3 twice."""
    return StageConfig(name="reconstruct", steps=steps, batch_size=batch, lr=1e-3, optics_lr=0.02,
                       milestones=(0.6, 0.85), gamma=0.3, loss="l1", val_every=val_every, select_on="psnr",
                       sharpness=(2.0, 64.0))


def _fluo_preset(compression: int, bin_px: int, patch_px: int, steps: int, batch: int, minutes: float,
                 *, seg: tuple[int, int] | None = None, full: bool = False) -> TrainingPreset:
    """A fluorescence preset (T = 4 patterns); ``seg`` = (head steps, joint steps) makes it task-aware: the
    paper's three steps, reconstruction pretraining → segmentation head alone → all jointly. ``full``: the
    full-resolution reference (see :func:`_fluo_full_preset`): fixed patterns, no sharpness schedule."""
    val_every = max(steps // 6, 1)
    stages = [_fluo_reconstruct(steps, batch, val_every)]
    if full:
        stages = [stages[0].model_copy(update={"sharpness": None, "freeze_optics": True})]
    if seg is not None:
        head, joint = seg
        stages += [StageConfig(name="seg_head", steps=head, batch_size=batch, lr=1e-3, loss="dice_bce",
                               val_every=max(head // 3, 1), select_on="dice"),
                   StageConfig(name="seg_joint", steps=joint, batch_size=batch, lr=2e-4, optics_lr=0.005,
                               loss="l1_dice_bce", val_every=max(joint // 3, 1), select_on="dice",
                               sharpness=None if full else (64.0, 64.0), freeze_optics=full)]
    what = "task-aware (reconstruction → segmentation head → joint)" if seg else "reconstruction"
    decoder = "locality-seg" if seg else "locality"
    if full:
        return TrainingPreset(
            name="fluo-seg-full", description=f"fluorescence, full-resolution widefield reference: the "
            f"locality-seg network fed one uniform (widefield) frame on an unbinned camera (bin 1, x1) at the "
            f"dose of {FLUO_PATTERNS} patterns, {what}",
            encoder=fluorescence_encoder(1, 1, init="uniform", learnable=False,
                                         photons_per_unit=FLUO_PATTERNS * FLUO_PHOTONS_PER_UNIT),
            cpu_decoder=decoder, paper_decoder=decoder, cpu_stages=tuple(stages), paper_stages=tuple(stages),
            cpu_minutes=minutes, optics_init="uniform",
            data=DataConfig(patch_px=patch_px, val_fraction=0.1, test_fraction=0.1))
    name = f"fluo-{'seg-' if seg else ''}x{compression}"
    return TrainingPreset(
        name=name, description=f"fluorescence, {FLUO_PATTERNS} learned illumination patterns, bin {bin_px} "
                               f"(x{compression}), {what}",
        encoder=fluorescence_encoder(bin_px, FLUO_PATTERNS), cpu_decoder=decoder, paper_decoder=decoder,
        cpu_stages=tuple(stages), paper_stages=tuple(stages), cpu_minutes=minutes,
        data=DataConfig(patch_px=patch_px, val_fraction=0.1, test_fraction=0.1))


PRESETS: dict[str, TrainingPreset] = {
    p.name: p for p in (_lff_preset(64, 45, 2400), _lff_preset(256, 20, 2400), _d2nn_preset(),
                        # the compression curve (x4, x16, x1024). The decoders are local, so x4 and x16
                        # train on 64² and 128² object crops: the camera window stays 32² as at x64.
                        _lff_preset(4, 20, 1200, patch_px=64), _lff_preset(16, 20, 1200, patch_px=128),
                        _lff_preset(1024, 15, 2400), _lff_v2_preset(64), _lff_v2_preset(256),
                        _d2nn_v2_preset(),
                        # fluorescence: CPU budgets ESTIMATED from step times measured on 2 threads of a busy
                        # 2-core machine (0.43 / 0.33 / 0.80 / 0.38 s per step for x64 / x256 / x1024 / seg-x256);
                        # the minutes are those estimates plus validation, not yet measured whole runs
                        _fluo_preset(64, 16, 256, 3000, 8, 25), _fluo_preset(256, 32, 256, 3600, 8, 25),
                        _fluo_preset(1024, 64, 512, 1800, 4, 28),
                        _fluo_preset(256, 32, 256, 2000, 8, 28, seg=(500, 800)),
                        _fluo_preset(1024, 64, 512, 1000, 4, 30, seg=(300, 500)),
                        # the short end of the compression curve (x4: bin 4, x16: bin 8, T = 4). Budget from
                        # measured times (benchmarks/bench_fluo_step_time.py): 0.285 / 0.280 CPU s per step on 1
                        # thread, x64 0.270; the whole fluo-x64 run took 0.45 s of wall time per step on 1 busy
                        # thread (1347 s / 3000 steps, validations included), so x4/x16 ≈ 0.47 s: 1600 steps ≈
                        # 12.6 min + ~1 min of loading, validation and test
                        _fluo_preset(4, 4, 256, 1600, 8, 14), _fluo_preset(16, 8, 256, 1600, 8, 14),
                        # the full-resolution reference of the task-aware models: fluo-seg-x256's schedule (equal
                        # decoder budget); 0.33 CPU s per step at its dearest stage (seg-x256: 0.36; x64 0.27 ↔
                        # 0.45 wall s) → 3300 steps ≈ 30 min + ~2 min of validation on 1 busy thread
                        _fluo_preset(1, 1, 256, 2000, 8, 32, seg=(500, 800), full=True),
                        # task-aware at x64, for the issue's x64 Dice target and the DSB2018 comparison with the
                        # full-resolution network: fluo-seg-x256's schedule at bin 16
                        _fluo_preset(64, 16, 256, 2000, 8, 30, seg=(500, 800)))
}


def get_preset(name: str) -> TrainingPreset:
    try:
        return PRESETS[name]
    except KeyError:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def train_config(preset: str, *, budget: str = "cpu", stages: tuple[int, ...] = (1, 2, 3),
                 max_photons: float | None = None, read_noise_e: float = 0.0, freeze_optics: bool = False,
                 init: str | None = None, steps: dict[int, int] | None = None, decoder: str | None = None,
                 optics_objective: str | None = None, **overrides) -> TrainConfig:
    """A full TrainConfig for a named preset, budget and subset of stages (1, 2, 3).

    ``max_photons``/``read_noise_e`` make training noise aware (the detector of the run). With ``init``
    (a shipped model name or a checkpoint) the run fine-tunes that model: its architecture is used, its
    optics and compression must match the preset's, and ``freeze_optics`` keeps its optics fixed in
    stage 3 (a microscope that is already built). ``steps`` ({stage number: steps}) replaces the budget's
    length of those stages (e.g. a short fine-tune). ``decoder`` (a decoder preset name, e.g. ``"conv"``)
    replaces the decoder architecture; with ``init`` the run keeps only the init's optics and trains
    the new decoder from scratch (stage 2 must run). ``freeze_optics`` also holds the optics of a
    joint stage 1; a phase-intensity stage 1 trains only the optics and is left as it was.
    ``optics_objective="joint"`` makes stage 1 train optics and decoder together: the stage's lr becomes
    the optics' and the decoder learns at ``JOINT_DECODER_LR``. ``optics_init`` (keyword) starts the
    optics from a designed filter (see TrainConfig.optics_init).
    """
    p = get_preset(preset)
    numbers = STAGE_NUMBERS
    fluo = isinstance(p.encoder, FluorescenceEncoderConfig)
    unknown = set(stages) - {1, 2, 3}
    if unknown:
        raise ValueError(f"unknown stage(s) {sorted(unknown)}; stages are 1 (optics), 2 (decoder), 3 (end to end)")
    steps = dict(steps or {})
    bad = {k: v for k, v in steps.items() if k not in stages or v < 1}
    if bad:
        raise ValueError(f"step overrides {bad} must name stages that run ({sorted(stages)}) with at least 1 step")
    chosen = []
    for s in p.stages(budget):
        if numbers[s.name] not in stages:
            continue
        update = ({"freeze_optics": freeze_optics or s.freeze_optics}
                  if s.name in ("end_to_end", "reconstruct", "seg_joint") else {})
        if s.name == "optics":
            if optics_objective == "joint" and s.optics_objective != "joint":
                update.update(optics_objective="joint", optics_lr=s.optics_lr or s.lr, lr=JOINT_DECODER_LR,
                              select_on="psnr")
            elif optics_objective is not None and optics_objective != s.optics_objective:
                raise ValueError(f"preset {preset}'s stage 1 is '{s.optics_objective}'; only 'joint' can replace it")
            if freeze_optics and update.get("optics_objective", s.optics_objective) == "joint":
                update["freeze_optics"] = True  # the paper's stage 1 trains only the optics: it stays as it was
        if numbers[s.name] in steps:
            update.update(steps=steps[numbers[s.name]], epochs=None)
        chosen.append(type(s).model_validate({**s.model_dump(), **update}) if update else s)
    chosen = tuple(chosen)
    system = p.system(budget)
    if init is not None:
        from ..io.checkpoints import check_compatible, read_checkpoint_info
        from ..pretrained import resolve_model

        info = read_checkpoint_info(resolve_model(init))
        check_compatible(info, system.encoder, what=f"preset {preset}")
        system = info.config
    if decoder is not None:
        system = system_with_decoder(system.encoder, decoder)
        if init is not None:
            overrides["init_decoder"] = False
    if fluo:
        return _fluorescence_train_config(p, budget, system, chosen, init, max_photons, read_noise_e, overrides)
    detector = system.encoder.detector.model_copy(update={"max_photons": max_photons, "read_noise_e": read_noise_e})
    detector = type(detector).model_validate(detector.model_dump())  # re-run the validators
    encoder = system.encoder.model_copy(update={"detector": detector})
    system = system.model_copy(update={"encoder": encoder})
    overrides.setdefault("data", p.data)
    overrides.setdefault("optics_init", p.optics_init)
    return TrainConfig(preset=preset, budget=budget, system=system, stages=chosen, init=init, **overrides)


def _fluorescence_train_config(p: TrainingPreset, budget: str, system: FluorescenceSystemConfig, stages, init,
                               max_photons, read_noise_e, overrides) -> TrainConfig:
    """The fluorescence part of :func:`train_config`: ``max_photons`` sets the photons per unit density
    (the preset's otherwise), ``read_noise_e`` > 0 the read noise, ``optics_init`` the patterns' start."""
    encoder = system.encoder
    det = encoder.detector.model_dump()
    if max_photons is not None:
        det["photons_per_unit"] = max_photons
    if read_noise_e:
        det["read_noise_e"] = read_noise_e
    start = overrides.setdefault("optics_init", encoder.patterns.init if init else p.optics_init)
    if start not in ("random", "hadamard", "uniform"):
        raise ValueError(f"fluorescence patterns start as random, hadamard or uniform; got optics_init {start!r}")
    if init is not None and start != encoder.patterns.init:
        raise ValueError(f"--init {init} brings its own patterns ({encoder.patterns.init}); drop --optics-init")
    encoder = FluorescenceEncoderConfig.model_validate({
        **encoder.model_dump(), "detector": det, "patterns": {**encoder.patterns.model_dump(), "init": start}})
    system = FluorescenceSystemConfig(encoder=encoder, decoder=system.decoder)
    overrides.setdefault("data", p.data)
    return TrainConfig(preset=p.name, budget=budget, system=system, stages=stages, init=init, **overrides)
