"""``dmicro``: the command line face of napari-dmicro (same public functions as the napari widgets)."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
import warnings

from .cli_checks import CLIError, batch_pairs, check_outputs, for_terminal, output_folder, replace_rule, with_cli_flags

EXAMPLES = """\
examples:
  dmicro demo --out demo_output
  dmicro phantom --out fields/ --count 10 --size 789 --seed 1
  dmicro phantom --modality fluorescence --out nuclei/ --count 10 --size 512 --seed 1
  dmicro import hologram.npz -o field.zarr --pixel-size-um 0.107 --wavelength-um 0.633 --background bg.npz
  dmicro simulate fields/phantom_0000.zarr -o meas.zarr --compression 64 --photons 10000 --read-noise 6
  dmicro info meas.zarr
  dmicro models                                        # the shipped models and their cards
  dmicro simulate field.zarr -o meas.zarr --model lff-x64-noisy --photons 1e4 --read-noise 6
  dmicro reconstruct meas.zarr -o phase.zarr --model lff-x64-noisy
  dmicro evaluate phase.zarr --reference field.zarr
  dmicro simulate img2d.tif -o fmeas.zarr --model fluo-seg-x256 --pixel-size-um 0.5 --photons 100 --read-noise 2
  dmicro segment fmeas.zarr -o nuclei.zarr --model fluo-seg-x256
  dmicro train --preset lff-x64 --data fields/ --out runs/lff-x64
"""

TRAIN_EXAMPLES = """\
examples:
  dmicro phantom --out fields/ --count 60 --seed 1
  dmicro train --preset lff-x64 --data fields/ --out runs/lff-x64             # CPU budget, stages 1,2,3
  dmicro train --preset lff-x64 --data fields/ --out runs/lff-x64 --resume    # continue after Ctrl-C
  dmicro train --preset lff-x64 --budget paper --data fields/ --out runs/paper
  dmicro train --preset lff-x64 --init lff-x64 --stages 2,3 --steps 2=800 --photons 1e4 --read-noise 6 \\
               --data fields/ --out runs/lff-x64-noisy                      # how lff-x64-noisy was made
  dmicro train --preset lff-x64 --init runs/lff-x64 --stages 3 --photons 1e4 --read-noise 6 \\
               --freeze-optics --data my_fields/ --out runs/finetuned       # fine-tune on your fields
  dmicro train --preset d2nn-x64 --init d2nn-x64 --decoder conv --stages 2 \\
               --data fields/ --out runs/d2nn-conv              # a new decoder for a microscope you built
  dmicro train --preset lff-x64 --optics-init knife_edge --stages 2,3 --freeze-optics \
               --data fields/ --out runs/knife-edge             # a designed (knife-edge) filter, kept fixed
  dmicro train --preset lff-x64-v2 --data fields/ --out runs/lff-x64-v2  # knife-edge start, joint stage 1

The checkpoint is OUT/model.safetensors (best validation model); OUT also holds the resumable state,
run.json (configuration, splits, data fingerprint, world_size) and events.jsonl (the log).
Several GPUs or nodes: torchrun --nproc_per_node 2 -m napari_dmicro.cli train ... (DDP; docs/scale-out.md).
"""


def _parse_size(text: str) -> tuple[int, int]:
    try:
        parts = [int(p) for p in text.lower().replace("×", "x").split("x")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"size '{text}' must be N or ROWSxCOLS, e.g. 789 or 512x640") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 8:
        raise argparse.ArgumentTypeError(f"size '{text}' must be N or ROWSxCOLS with sides >= 8")
    return parts[0], parts[1]


def _progress(iterable, total: int, desc: str):
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="field", disable=None)


def cmd_phantom(args) -> int:
    if args.modality == "fluorescence":
        return _fluorescence_phantoms(args)
    from .io.fields import write_field
    from .phantoms import PhantomConfig, make_fields

    if args.style not in QPM_STYLES or args.pixel_size_um is not None:
        raise CLIError(f"--style {args.style}{' and --pixel-size-um' if args.pixel_size_um is not None else ''} "
                       f"are for --modality fluorescence; phase phantoms have styles {', '.join(QPM_STYLES)} "
                       "and the paper's grid")
    config = PhantomConfig.style(args.style, size_px=args.size)
    out = output_folder(args.out)
    paths = check_outputs(args, [out / f"phantom_{k:04d}.zarr" for k in range(args.count)])  # all before any
    fields = make_fields(args.count, seed=args.seed, config=config)
    for k, (path, field) in enumerate(zip(paths, _progress(fields, args.count, "phantoms"), strict=True)):
        write_field(path, field, pixel_size_um=config.pixel_size_um, wavelength_um=config.wavelength_um,
                    attrs={"source": "napari_dmicro.phantoms", "seed": args.seed, "index": k, "style": args.style,
                           "command": " ".join(["dmicro", *sys.argv[1:]])},
                    **replace_rule(args))
    print(f"wrote {args.count} phantom field(s) of {args.size[0]}×{args.size[1]} px to {out}")
    return 0


def _fluorescence_phantoms(args) -> int:
    from .io.store import write_fluorescence
    from .phantoms import FLUO_STYLES, FluorescencePhantomConfig, make_fluorescence_fields

    style = "mixed" if args.style == "classic" else args.style  # classic is the phase default
    if style not in FLUO_STYLES:
        raise CLIError(f"--style {args.style} is a phase-phantom style; fluorescence styles: {', '.join(FLUO_STYLES)}")
    overrides = {"size_px": args.size}
    if args.pixel_size_um is not None:
        overrides["pixel_size_um"] = args.pixel_size_um
    config = FluorescencePhantomConfig.style(style, **overrides)
    out = output_folder(args.out)
    paths = check_outputs(args, [out / f"nuclei_{k:04d}.zarr" for k in range(args.count)])  # all before any
    fields = make_fluorescence_fields(args.count, args.seed, config=config)
    command = " ".join(["dmicro", *sys.argv[1:]])
    for path, f in zip(paths, _progress(fields, args.count, "fields"), strict=True):
        write_fluorescence(path, f.image, f.labels, pixel_size_um=config.pixel_size_um,
                           emission_wavelength_um=config.emission_wavelength_um,
                           attrs={**f.attrs(), "style": style, "n_nuclei": f.n_nuclei, "command": command},
                           **replace_rule(args))
    print(f"wrote {args.count} fluorescence field(s) of {args.size[0]}×{args.size[1]} px at "
          f"{config.pixel_size_um:g} µm/px ({style}) to {out}")
    return 0


QPM_STYLES = ("classic", "realistic", "round", "dense")
FLUO_STYLE_NAMES = ("sparse", "confluent", "mixed", "dsb", "hard", "dsb-hard")


def _progress_callback(desc: str, unit: str):
    from tqdm import tqdm

    state = {}

    def callback(done: int, total: int) -> None:
        bar = state.get("bar")
        if bar is None:
            bar = state["bar"] = tqdm(total=total, desc=desc, unit=unit, disable=None, leave=False)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return callback


FIELD_INPUTS = (".zarr", ".npy", ".npz")
CAMERA_INPUTS = (".zarr", ".npy", ".npz", ".tif", ".tiff", ".png")


def _scale_source(image, key: str, flag_value) -> str:
    if key in image.attrs.get("defaults_used", ()):
        return "from --" + key.replace("_", "-")
    return "from the file" if flag_value is None else "from the file, as given"


def cmd_simulate(args) -> int:
    from . import api, cli_fluo
    from .io.fields import read_field, read_image
    from .model_grid import check_pitch_ratio, check_wavelength_ratio

    model = api.load_model(args.model, device=args.device) if args.model else None
    if model is not None and cli_fluo.is_fluorescence_model(model):
        return cli_fluo.simulate(args, model)
    if str(args.field).lower().endswith(cli_fluo.TIFF):
        raise CLIError(f"{args.field}: a fluorescence image is simulated with a fluorescence model: give --model "
                       "(e.g. fluo-x64 or a checkpoint trained with a fluo-… preset)")
    if args.channel is not None or args.background_photons:
        raise CLIError("--channel and --background-photons are for fluorescence models (--model fluo-…)")
    pairs = batch_pairs(args, args.field, args.output, FIELD_INPUTS, "field files")
    images = []
    for source, _ in pairs:  # every input's scale before any work (read lazily: metadata only)
        if read_image(source).kind == "fluorescence":
            raise CLIError(f"{source} is a fluorescence image: simulate it with a fluorescence model (--model "
                           "fluo-x64 or a checkpoint trained with a fluo-… preset)")
        image = read_field(source)
        try:
            _, ps, wl = api.field_sampling(image, args.pixel_size_um, args.wavelength_um)
            if model is not None:
                grid = model.encoder.config.optics.grid
                check_pitch_ratio(ps, grid.pixel_size_um)
                check_wavelength_ratio(wl, grid.wavelength_um)
        except ValueError as exc:
            raise CLIError(str(exc) if str(exc).startswith(str(source)) else f"{source}: {exc}") from None
        images.append(image)
    for (source, target), image in zip(pairs, images, strict=True):
        _simulate_one(args, model, source, target, image)
    if len(pairs) > 1:
        print(f"wrote {len(pairs)} measurements to {args.output}")
    return 0


def _simulate_one(args, model, source, target, image) -> None:
    import dask.array as da

    from . import api
    from .batch import stack_axis_of
    from .io.fields import write_measurement
    from .io.stream import scratch_array
    from .model_grid import plan_grid

    data, ps, wl = api.field_sampling(image, args.pixel_size_um, args.wavelength_um)
    if model is None:
        model = api.untrained_model(args.optics, compression=args.compression, pixel_size_um=ps, wavelength_um=wl,
                                    seed=args.optics_seed)
        state = "untrained (random initialisation)"
    else:
        state = f"trained model {args.model}"
    stack = data.ndim == 3
    axis = stack_axis_of(image, args.stack_axis, source)
    plan = plan_grid(data[0] if stack else data, model, pixel_size_um=ps, wavelength_um=wl)  # plane 0, to show
    what = f"stack of {data.shape[0]} ({axis}) × " if stack else ""
    print(f"{source}: {what}{data.shape[-2]}×{data.shape[-1]} px at {ps:g} µm "
          f"({_scale_source(image, 'pixel_size_um', args.pixel_size_um)}), "
          f"λ {wl:g} µm ({_scale_source(image, 'wavelength_um', args.wavelength_um)}); model grid "
          f"{model.encoder.pixel_size_um:g} µm, λ {model.encoder.config.optics.grid.wavelength_um:g} µm: "
          f"{plan.describe()}")
    options = dict(photons=args.photons, read_noise=args.read_noise, seed=args.seed, device=args.device,
                   pixel_size_um=ps, wavelength_um=wl)
    extra = {"source_field": str(source), "optics_state": state}
    if not args.model:
        extra["optics_seed"] = args.optics_seed
    start = time.perf_counter()
    if not stack:
        meas = api.simulate(data, model, progress=_progress_callback("simulate", "block"), **options)
        record, image_out, attrs, shape = meas.record, meas.image, {**meas.to_attrs(), **extra}, meas.shape
        write_measurement(target, image_out, pixel_size_um=record.camera_pixel_size_um,
                          wavelength_um=record.wavelength_um, attrs=attrs, **replace_rule(args))
    else:
        with contextlib.ExitStack() as scratch:
            st = api.simulate(data, model, progress=_progress_callback("simulate", "plane"), stack_axis=axis,
                              out=lambda shape: scratch.enter_context(scratch_array(target, shape)), **options)
            record, shape = st.records[0], st.shape
            write_measurement(target, da.from_zarr(st.images), pixel_size_um=record.camera_pixel_size_um,
                              wavelength_um=record.wavelength_um, attrs={**st.to_attrs(), **extra},
                              stack_axis=axis, **replace_rule(args))
    elapsed = time.perf_counter() - start
    print(f"wrote {'×'.join(str(s) for s in shape)} measurement (x{record.compression}, {record.acquisition}) "
          f"to {target} in {elapsed:.2f} s")


def _import_hologram(args) -> tuple[object, dict, str]:
    from . import api
    from .holography import read_hologram_files

    try:
        hologram, background, bg_name = read_hologram_files(args.input, args.background)
    except ValueError as exc:
        hint = "; for a complex field use --complex" if "complex" in str(exc) else ""
        raise CLIError(f"{exc}{hint}") from None
    result = api.field_from_hologram(
        hologram, pixel_size_um=args.pixel_size_um, wavelength_um=args.wavelength_um, background=background,
        filter_name=args.filter, filter_size=args.filter_size, refocus_um=args.refocus_um,
        medium_index=args.medium_index, correct_background=None if args.correction == "none" else args.correction)
    record = result.record
    attrs = {**record.to_attrs(), "hologram_background_file": bg_name}
    note = (f"hologram, {record.filter_name} filter {record.filter_size:.3g}, "
            f"{'reference ' + bg_name if bg_name else 'no reference'}, correction {record.correction}")
    return result.field, attrs, note


def cmd_import(args) -> int:
    import numpy as np

    from .holography import field_from_phase_amplitude_files
    from .io.fields import read_field, write_field

    check_outputs(args, [args.output], inputs=[args.input, args.background, args.amplitude])
    if args.background and args.mode != "hologram":
        raise CLIError("--background is the reference hologram: it goes with --hologram only")
    if args.amplitude and args.mode != "phase_amplitude":
        raise CLIError("--amplitude goes with --phase-amplitude only")
    if args.mode == "hologram":
        field, attrs, note = _import_hologram(args)
    elif args.mode == "phase_amplitude":
        field = field_from_phase_amplitude_files(args.input, args.amplitude)
        attrs = {"source_kind": "phase and amplitude images", "source_amplitude": args.amplitude}
        note = f"phase image{' and amplitude ' + str(args.amplitude) if args.amplitude else ', amplitude 1'}"
    else:
        field = np.asarray(read_field(args.input).data)
        attrs, note = {"source_kind": "complex array"}, "complex field"
    attrs = {**attrs, "source": str(args.input)}
    write_field(args.output, field, pixel_size_um=args.pixel_size_um, wavelength_um=args.wavelength_um,
                attrs=attrs, **replace_rule(args))
    rows, cols = field.shape
    print(f"wrote {rows}×{cols} field ({args.pixel_size_um:g} µm pixels, λ {args.wavelength_um:g} µm; {note}) "
          f"to {args.output}")
    return 0


def cmd_reconstruct(args) -> int:
    from . import api, cli_fluo
    from .batch import ReconstructionJob, reconstruct_file
    from .inference.distributed import cluster_client
    from .io.fields import read_measurement
    from .io.fluorescence import is_fluorescence_measurement

    pairs = batch_pairs(args, args.measurement, args.output, CAMERA_INPUTS, "measurements")
    model = api.load_model(args.model, device=args.device)
    if cli_fluo.is_fluorescence_model(model):
        return cli_fluo.reconstruct(args, model, pairs)
    images = [read_measurement(source) for source, _ in pairs]  # every input readable before any work
    for (source, _), image in zip(pairs, images, strict=True):
        if is_fluorescence_measurement(image):
            raise CLIError(f"{source} is a fluorescence measurement (made by {image.attrs.get('model')}) but "
                           f"{args.model} is a phase model; reconstruct it with the fluorescence model that "
                           "simulated it")
    with cluster_client(args.scheduler, args.workers) as client:
        for (source, target), image in zip(pairs, images, strict=True):
            stack = image.data.ndim == 3
            unit = "plane" if stack else ("block" if client is not None else "band")
            written = reconstruct_file(model, ReconstructionJob(str(source), str(target)), model_name=args.model,
                                       overlap=args.overlap, device=args.device, client=client,
                                       progress=_progress_callback("reconstruct", unit),
                                       pixel_size_um=args.pixel_size_um, stack_axis=args.stack_axis, image=image,
                                       announce=print, **replace_rule(args))
            where = f" on {written['distributed_workers']} dask worker(s)" if client is not None else ""
            print(f"wrote {'×'.join(str(s) for s in written['shape'])} phase map (rad) to {target} in "
                  f"{written['seconds']:.2f} s{where}")
    if len(pairs) > 1:
        print(f"wrote {len(pairs)} phase maps to {args.output}")
    return 0


def cmd_evaluate(args) -> int:
    import json

    import dask.array as da
    import numpy as np

    from . import api
    from .io.fields import read_image, write_image

    check_outputs(args, [args.ssim_map], inputs=[args.phase, args.reference])
    phase = read_image(args.phase, lazy=True)
    if phase.kind == "fluorescence":
        from . import cli_fluo

        return cli_fluo.evaluate(args)
    if args.pixel_size_um is not None or args.reference_mask:
        raise CLIError("--pixel-size-um and --reference-mask are for fluorescence evaluations (a TIFF reference)")
    reference = read_image(args.reference, lazy=True)
    if phase.kind != "phase":
        raise CLIError(f"{args.phase} is a {phase.kind}, not a phase map")
    if reference.kind not in ("field", "phase"):
        raise CLIError(f"the reference {args.reference} is a {reference.kind}; give a field or a phase map")
    # block by block: memory of one block, not of the field
    align = not args.no_align_offset
    report = api.evaluate(phase.data, reference.data, keep_ssim_map=False, align_offset=align,
                          reference_convention=args.reference_convention)

    def rounded(result: dict) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in result.items()}

    stack_axis = None
    if isinstance(report, list):  # a stack, plane by plane
        stack_axis = phase.attrs.get("stack_axis") or reference.attrs.get("stack_axis") or "t"
        result = {"stack_axis": stack_axis, "mean_psnr_db": float(np.mean([r.psnr_db for r in report])),
                  "mean_ssim": float(np.mean([r.ssim for r in report])),
                  "planes": [rounded(r.as_dict()) for r in report]}
    else:
        result = report.as_dict()
    print(json.dumps(rounded(result), indent=2))
    if args.ssim_map:
        def ssim_map(p, r):
            return api.ssim_map_lazy(p, r, align_offset=align, reference_convention=args.reference_convention)

        if stack_axis:
            ssim = da.stack([ssim_map(phase.data[k], reference.data[k]) for k in range(phase.data.shape[0])])
        else:
            ssim = ssim_map(phase.data, reference.data)
        write_image(args.ssim_map, ssim, kind="amplitude", stack_axis=stack_axis,
                    pixel_size_um=phase.pixel_size_um, wavelength_um=phase.wavelength_um,
                    attrs={"content": "SSIM map (φ/2π, data range 1, 11×11 Gaussian σ 1.5)",
                           "phase": str(args.phase), "reference": str(args.reference)},
                    **replace_rule(args))
        print(f"wrote the SSIM map to {args.ssim_map}")
    return 0


def cmd_segment(args) -> int:
    from . import cli_fluo

    return cli_fluo.segment(args)


def cmd_models(args) -> int:
    import json

    from .io.checkpoints import load_checkpoint, read_checkpoint_info
    from .pretrained import describe_model, model_report, shipped_models

    models = shipped_models()
    if not models:
        print("no models are shipped in this version; train one with `dmicro train` "
              "(docs/training.md) and pass its model.safetensors as --model")
        return 0
    for name, path in models.items():
        info = read_checkpoint_info(path)
        size_mb = path.stat().st_size / 2**20
        print(f"{name}  ({size_mb:.1f} MB)")
        model, _ = load_checkpoint(path, device="cpu")
        for line in describe_model(info.config, info.card, model_report(model, info.card)):
            print(f"    {line}")
        if args.verbose:
            print(json.dumps(info.card, indent=2, default=str))
        print()
    return 0


def _parse_stages(text: str) -> tuple[int, ...]:
    try:
        stages = tuple(sorted({int(p) for p in text.split(",") if p.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"stages '{text}' must be a comma-separated subset of 1,2,3") from None
    if not stages or not set(stages) <= {1, 2, 3}:
        raise argparse.ArgumentTypeError(f"stages '{text}' must be a comma-separated subset of 1,2,3")
    return stages


def _parse_range(text: str) -> tuple[float, float]:
    try:
        lo, hi = (float(p) for p in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' must be LOW,HIGH (e.g. 0.25,4)") from None
    return lo, hi


def _with_data_options(config, args):
    """The preset's config with the issue-10 data and flat-field options of ``dmicro train``."""
    data = {k: v for k, v in {
        "phase_reference": args.phase_reference, "extra_data": tuple(args.extra_data or ()) or None,
        "extra_data_weight": args.extra_data_weight, "rotations": args.rotations or None,
        "amplitude_scale": args.amplitude_scale, "phase_scale": args.phase_scale,
        "thick_weight": args.thick_weight}.items() if v is not None}
    if not data and not args.flat_field:
        return config
    update = {"data": type(config.data)(**{**config.data.model_dump(), **data})}
    if args.flat_field:
        system = config.system
        detector = system.encoder.detector.model_copy(update={"flat_field": True})
        update["system"] = system.model_copy(update={"encoder": system.encoder.model_copy(
            update={"detector": detector})})
    return type(config)(**{**dict(config), **update})


def parse_stage_steps(text: str) -> dict[int, int]:
    """``"2=800,3=400"`` → {2: 800, 3: 400}: the length of those stages in optimiser steps."""
    steps = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        try:
            stage, count = (int(v) for v in part.split("="))
        except ValueError:
            raise argparse.ArgumentTypeError(f"steps '{text}' must look like 2=800,3=400 (stage=steps)") from None
        if stage not in (1, 2, 3) or count < 1:
            raise argparse.ArgumentTypeError(f"steps '{part}': the stage must be 1, 2 or 3 and steps ≥ 1")
        steps[stage] = count
    return steps


def cmd_train(args) -> int:
    import signal
    import threading

    from tqdm import tqdm

    from .training import Trainer, train_config
    from .training.distributed import is_main_process
    from .training.trainer import saved_files_message

    overrides = {"seed": args.seed, "device": args.device}
    if args.optics_init is not None:
        overrides["optics_init"] = args.optics_init
    if args.max_minutes is not None:
        overrides["max_minutes"] = args.max_minutes
    if args.vgg19_weights:
        overrides["vgg19_weights"] = args.vgg19_weights
    try:
        config = train_config(args.preset, budget=args.budget, stages=args.stages, max_photons=args.photons,
                              read_noise_e=args.read_noise, freeze_optics=args.freeze_optics, init=args.init,
                              steps=args.steps, decoder=args.decoder, optics_objective=args.stage1_objective,
                              **overrides)
        config = _with_data_options(config, args)
    except KeyError as exc:  # an unknown preset or decoder name
        raise CLIError(exc.args[0] if exc.args else str(exc)) from None
    cancel = threading.Event()

    def _on_sigint(signum, frame):  # first Ctrl-C: stop at the next step and save; second: abort
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()
        tqdm.write("stopping after this step (Ctrl-C again to abort without saving)…", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, _on_sigint)
    bar = None
    status = 0
    speaks = is_main_process()  # under torchrun only rank 0 prints (every rank runs this command)
    try:
        trainer = Trainer(config, args.data, args.out, resume=args.resume, cancel=cancel,
                          command=" ".join(["dmicro", *sys.argv[1:]]))
        for event in trainer.run():
            if event.kind == "stage_start":
                if bar is not None:
                    bar.close()
                bar = tqdm(total=event.total_steps, initial=event.step, unit="step",
                           disable=args.quiet or not speaks, desc=f"stage {event.stage_number} {event.stage}",
                           dynamic_ncols=True)
            elif event.kind == "step" and bar is not None:
                bar.update(event.step - bar.n)
                bar.set_postfix(loss=f"{event.loss:.4f}", refresh=False)
            elif event.kind in ("validation", "start", "stage_end", "test", "done", "cancelled") and speaks:
                text = event.describe() if event.kind != "test" else "test (once, at the end): " + ", ".join(
                    f"{k} {v:.4g}" for k, v in event.metrics.items() if isinstance(v, (int, float)))
                (tqdm.write if bar is not None else print)(text)
            if event.kind == "cancelled":
                status = 130
    except KeyboardInterrupt:  # the second Ctrl-C: this step is lost, earlier saves are kept
        print(f"dmicro train: aborted without saving the current step; {saved_files_message(args.out)}",
              file=sys.stderr)
        return 130
    finally:
        if bar is not None:
            bar.close()
        signal.signal(signal.SIGINT, previous)
    return status


def cmd_info(args) -> int:
    import json

    from .io.fields import read_image

    image = read_image(args.path)
    axis = f" ({image.attrs['stack_axis']} × y × x)" if image.data.ndim == 3 and image.attrs.get("stack_axis") else ""
    print(f"{args.path}: {image.kind}, {'×'.join(str(s) for s in image.data.shape)} px{axis}, "
          f"dtype {image.data.dtype}, pixel {image.pixel_size_um} µm, wavelength {image.wavelength_um} µm")
    if image.attrs:
        print(json.dumps(image.attrs, indent=2, default=str))
    return 0


def cmd_demo(args) -> int:
    from .demo import run_demo

    out = output_folder(args.out)  # the demo replaces its own earlier stores, never a foreign one
    check_outputs(argparse.Namespace(overwrite=True), [out / f"{n}.zarr" for n in ("field", "measurement", "phase")])
    outputs = run_demo(args.out, size_px=args.size, seed=args.seed, model=args.model, overwrite=True)
    for name, path in outputs.items():
        print(f"{name:12s} {path}")
    return 0


def _add_scale_flags(p: argparse.ArgumentParser, pixel_help: str, wavelength_help: str | None) -> None:
    p.add_argument("--pixel-size-um", type=float, default=None, help=pixel_help)
    if wavelength_help:
        p.add_argument("--wavelength-um", type=float, default=None, help=wavelength_help)
    p.add_argument("--stack-axis", choices=("t", "p"), default=None,
                   help="leading axis of a 3-D input that does not name it: t (time-lapse, the default) or p "
                        "(positions); refused when the input names another")


def _add_cluster_flags(p: argparse.ArgumentParser) -> None:
    """``--workers N`` / ``--scheduler ADDRESS``: run on dask.distributed (docs/scale-out.md)."""
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="start a local dask cluster of N worker processes (127.0.0.1) for this command")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="tcp://HOST:PORT of a running dask scheduler, or 'local' (one worker per core)")


def _add_overwrite_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")
    p.add_argument("--overwrite-foreign", action="store_true",
                   help="replace an existing output even if napari-dmicro did not write it (a zarr store or a file)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dmicro", description="Differentiable compressive quantitative phase microscopy.",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"napari-dmicro {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("demo", help="phantom → x64 noisy measurement → phase → PSNR/SSIM, zarr + figure",
                       epilog="example:\n  dmicro demo --out demo_output",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_output", help="output folder (default: demo_output)")
    p.add_argument("--size", type=_parse_size, default=(789, 789), help="field size N or RxC (789)")
    p.add_argument("--seed", type=int, default=6, help="phantom and noise seed (6: a field with several cells, "
                   "not one the shipped models were trained on)")
    p.add_argument("--model", default="lff-x64-noisy", help="shipped model or checkpoint (lff-x64-noisy)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("phantom", help="generate synthetic cell fields (phase, or fluorescence nuclei) as zarr",
                       epilog="examples:\n  dmicro phantom --out fields/ --count 10 --size 789 --seed 1\n"
                              "  dmicro phantom --modality fluorescence --style mixed --out nuclei/ --count 100 "
                              "--size 256 --seed 1",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--modality", choices=("phase", "fluorescence"), default="phase",
                   help="phase: complex QPM fields (phantom_NNNN.zarr); fluorescence: stained nuclei with instance "
                        "labels (nuclei_NNNN.zarr)")
    p.add_argument("--count", type=int, default=1, help="number of fields (1)")
    p.add_argument("--size", type=_parse_size, default=(789, 789), help="N or RxC pixels (789)")
    p.add_argument("--seed", type=int, default=0, help="seed; field k uses a seed derived from it")
    p.add_argument("--style", choices=QPM_STYLES + FLUO_STYLE_NAMES, default="classic",
                   help="phase: classic (HeLa-like spread cells, the shipped models' data), realistic (spread, round "
                        "and mixed fields, sparse to confluent, measured-like noise), round, dense; fluorescence: "
                        "sparse, confluent, mixed (sparse to confluent; the default), dsb (DSB2018-like density), "
                        "hard and dsb-hard (mixed and dsb with chromatin texture, PSF wings and out-of-focus "
                        "nuclei matched to DSB2018; docs/phantoms.md)")
    p.add_argument("--pixel-size-um", type=float, default=None,
                   help="fluorescence: specimen pixel size, µm (default 0.325: 20x objective, 6.5 µm camera pixel)")
    _add_overwrite_flags(p, "existing napari-dmicro outputs")
    p.set_defaults(func=cmd_phantom)

    p = sub.add_parser("simulate", help="camera measurement of a field through a model's optics",
                       epilog="example:\n  dmicro simulate field.zarr -o meas.zarr --compression 64 "
                              "--photons 10000 --read-noise 6",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("field", help="complex field (.zarr, .npy or .npz; 2-D or a (T|P, Y, X) stack); with a "
                   "fluorescence model a 2-D fluorescence image (a store from dmicro phantom --modality "
                   "fluorescence, or a .tif with --pixel-size-um); or a folder "
                   "or a quoted glob of them (\"fields/*.zarr\"): one measurement per input")
    p.add_argument("-o", "--output", required=True,
                   help="measurement .zarr to write (for a folder or glob: the output folder; names from the inputs)")
    _add_scale_flags(p, "the field's (fluorescence: the image's) pixel pitch at the sample, µm: required when the "
                     "file does not record it (always for a TIFF)",
                     "the field's illumination wavelength, µm: required when the file does not record it; "
                     "fluorescence: the image's emission wavelength, used when the model's emission PSF has none")
    p.add_argument("--model", help="shipped model name or checkpoint (default: untrained random optics)")
    p.add_argument("--optics", choices=("lff", "d2nn"), default="lff", help="untrained optics type (lff)")
    p.add_argument("--compression", type=int, default=64, help="untrained optics: 4, 16, 64, 256 or 1024 (64)")
    p.add_argument("--photons", type=float, default=None, help="max photon count (default: noise free); "
                   "fluorescence: photons per specimen pixel of density 1 under one full pattern")
    p.add_argument("--read-noise", type=float, default=0.0, help="read noise σ in electrons (0)")
    p.add_argument("--background-photons", type=float, default=0.0,
                   help="fluorescence: background photons per camera pixel and frame (0)")
    p.add_argument("--channel", type=int, default=None, help="fluorescence: the channel of a multi-channel TIFF")
    p.add_argument("--seed", type=int, default=0, help="noise seed (0)")
    p.add_argument("--optics-seed", type=int, default=0, help="seed of the random optics (0)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (cpu)")
    _add_overwrite_flags(p, "an existing napari-dmicro output")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("import", help="a lab acquisition (off-axis hologram, phase image, complex array) → field",
                       epilog="examples:\n  dmicro import hologram_cell.npz -o cell.zarr --pixel-size-um 0.107 "
                              "--wavelength-um 0.633\n  dmicro import phase.tif -o f.zarr --phase-amplitude "
                              "--amplitude amp.tif --pixel-size-um 0.139 --wavelength-um 0.532",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", help="hologram or phase image (.npy, .npz, .tif, .png; an .npz with data/bg_data "
                   "keys holds hologram and reference), or a complex field (.npy, .npz, .zarr)")
    p.add_argument("-o", "--output", required=True, help="field .zarr to write")
    p.add_argument("--pixel-size-um", type=float, required=True, help="pixel size at the sample, µm (required)")
    p.add_argument("--wavelength-um", type=float, required=True, help="illumination wavelength, µm (required)")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--hologram", dest="mode", action="store_const", const="hologram",
                      help="INPUT is an off-axis hologram (the default)")
    kind.add_argument("--phase-amplitude", dest="mode", action="store_const", const="phase_amplitude",
                      help="INPUT is a phase image in radians (amplitude 1 unless --amplitude)")
    kind.add_argument("--complex", dest="mode", action="store_const", const="complex",
                      help="INPUT is a complex field (or an .npz of amplitude and phase)")
    p.set_defaults(mode="hologram")
    p.add_argument("--background", help="reference hologram of the empty sample (same camera frame)")
    p.add_argument("--amplitude", help="amplitude image for --phase-amplitude")
    p.add_argument("--filter", default="smooth disk", help="sideband filter: disk, smooth disk, gauss, square, "
                   "smooth square, tukey (smooth disk)")
    p.add_argument("--filter-size", type=float, default=0.5,
                   help="filter radius as a fraction of the sideband distance (0.5)")
    p.add_argument("--refocus-um", type=float, default=None, help="refocus by this distance, µm (none)")
    p.add_argument("--medium-index", type=float, default=1.0, help="refractive index of the medium (1.0)")
    p.add_argument("--correction", choices=("tilt", "offset", "none"), default="tilt",
                   help="background phase correction, fitted on a 5 px border (tilt)")
    _add_overwrite_flags(p, "an existing napari-dmicro output")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("train", help="train optics and decoder (the paper's three stages)",
                       epilog=TRAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", required=True, help="lff-x64, lff-x256, d2nn-x64 (shipped models) or lff-x4, "
                   "lff-x16, lff-x1024 (the compression curve), lff-x64-v2, lff-x256-v2, d2nn-x64-v2 (issue 10 "
                   "recipe); fluo-x64, fluo-x256, fluo-x1024, fluo-seg-x256, fluo-seg-x1024 (fluorescence, "
                   "docs/fluorescence.md; also fluo-x4, fluo-x16 for the compression curve, fluo-seg-x64, and "
                   "fluo-seg-full, the same network on the full-resolution image)")
    p.add_argument("--data", required=True, help="folder of field files (.zarr, .npy, .npz), split by field")
    p.add_argument("--out", required=True, help="run folder; the checkpoint is OUT/model.safetensors")
    p.add_argument("--stages", type=_parse_stages, default=(1, 2, 3), help="subset of 1,2,3 (1,2,3)")
    p.add_argument("--budget", choices=("cpu", "paper"), default="cpu",
                   help="cpu: minutes on a laptop CPU; paper: the paper's epochs and learning rates (cpu)")
    p.add_argument("--steps", type=parse_stage_steps, default=None,
                   help="replace the budget's length of stages, e.g. 2=800,3=400 (a short fine-tune)")
    p.add_argument("--init", help="start from a shipped model name or a checkpoint / run folder")
    p.add_argument("--decoder", default=None,
                   help="another decoder architecture (e.g. conv, swinir-light); with --init: keep only the "
                        "init's optics and train this decoder from scratch (include stage 2)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted run in --out")
    p.add_argument("--photons", type=float, default=None, help="noise-aware training: max photon count")
    p.add_argument("--read-noise", type=float, default=0.0, help="noise-aware training: read noise σ (e-)")
    p.add_argument("--freeze-optics", action="store_true",
                   help="stage 3 (and a joint stage 1) keep the optics fixed (a designed or built microscope); "
                        "fluorescence: the patterns stay as initialised (trained and evaluated binary)")
    p.add_argument("--optics-init", choices=("random", "all_pass", "zernike", "knife_edge", "dpc", "hadamard",
                                             "uniform"), default=None,
                   help="how the optics start without --init: the paper's random masks or a designed Fourier "
                        "filter (LFF; default: the preset's); fluorescence: random, hadamard or uniform patterns "
                        "(with --freeze-optics: the designed baselines at equal decoder budget)")
    p.add_argument("--stage1-objective", choices=("phase_intensity", "joint"), default=None,
                   help="stage 1: intensity read as φ/2π (the paper) or optics trained jointly with the decoder "
                        "(default: the preset's)")
    p.add_argument("--vgg19-weights", help="safetensors file with ImageNet VGG19 weights (perceptual loss)")
    p.add_argument("--seed", type=int, default=0, help="seed of splits, initialisation, crops and noise (0)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (cpu)")
    p.add_argument("--max-minutes", type=float, default=None, help="stop after this many minutes (resumable)")
    p.add_argument("--phase-reference", choices=("absolute", "background"), default=None,
                   help="training targets: φ mod 2π (absolute, the presets' default) or phase relative to the "
                        "background, unwrapped (docs/physics.md)")
    p.add_argument("--extra-data", action="append", metavar="FOLDER",
                   help="another folder of fields added to the training split (repeatable)")
    p.add_argument("--extra-data-weight", type=float, default=None,
                   help="probability that a training crop comes from the --extra-data folders")
    p.add_argument("--rotations", action="store_true", help="augment with 90° rotations (with flips: 8 orientations)")
    p.add_argument("--amplitude-scale", type=_parse_range, default=None, metavar="LOW,HIGH",
                   help="augment: multiply a crop's amplitude by a log-uniform factor (e.g. 0.25,4)")
    p.add_argument("--phase-scale", type=_parse_range, default=None, metavar="LOW,HIGH",
                   help="augment: multiply a crop's background-referenced phase (e.g. 0.7,1.4; needs "
                        "--phase-reference background)")
    p.add_argument("--thick-weight", type=float, default=None,
                   help="prefer crops with thick pixels: probability ∝ 1 + W·(fraction above 3 rad)")
    p.add_argument("--flat-field", action="store_true",
                   help="the camera image is divided by the flat-field (empty-field) image (docs/physics.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("reconstruct", help="phase map from a camera measurement",
                       epilog="examples:\n  dmicro reconstruct meas.zarr -o phase.zarr --model runs/lff-x64\n"
                              "  dmicro reconstruct mosaic.zarr -o phase.zarr --model lff-x64 --workers 4   "
                              "# local dask cluster\n  dmicro reconstruct mosaic.zarr -o phase.zarr --model "
                              "lff-x64 --scheduler tcp://head:8786",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("measurement", help="camera measurement .zarr from dmicro simulate, or a lab camera image "
                   "(real 2-D .npy, .npz, .tif, .png or zarr array; or a (T|P, Y, X) stack), or a folder or a "
                   "quoted glob of them: one phase map per input")
    p.add_argument("-o", "--output", required=True,
                   help="phase map .zarr to write, radians (for a folder or glob: the output folder)")
    _add_scale_flags(p, "camera pixel pitch at the sample (object plane), µm, of a bare camera image: checked "
                     "against the model", None)
    p.add_argument("--model", required=True, help="shipped model name or checkpoint / run folder")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (cpu)")
    p.add_argument("--overlap", type=int, default=None, help="decoder window overlap, camera px (half a window)")
    _add_cluster_flags(p)
    _add_overwrite_flags(p, "an existing napari-dmicro output")
    p.set_defaults(func=cmd_reconstruct)

    p = sub.add_parser("segment", help="instance labels from a fluorescence measurement (task-aware models)",
                       epilog="examples:\n  dmicro segment meas.zarr -o nuclei.zarr --model fluo-seg-x256\n"
                              "  dmicro segment meas.zarr -o nuclei.tif --model runs/fluo-seg-x256",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("measurement", help="fluorescence measurement .zarr from dmicro simulate (or a folder or a "
                   "quoted glob of them)")
    p.add_argument("-o", "--output", required=True,
                   help="label store .zarr (instances + the reconstruction, on the input image's grid) or a .tif "
                        "of int32 labels (one measurement); for a folder or glob: the output folder")
    p.add_argument("--model", required=True, help="task-aware fluorescence model (fluo-seg-…) or checkpoint")
    p.add_argument("--min-size-px", type=int, default=0, help="drop instances smaller than this (px; 0)")
    p.add_argument("--device", default="cpu", help="auto, cpu, cuda or mps (cpu)")
    _add_overwrite_flags(p, "an existing napari-dmicro output (a label TIFF: the file)")
    p.set_defaults(func=cmd_segment)

    p = sub.add_parser("evaluate", help="PSNR/SSIM of a phase map against a reference field or phase map; "
                       "of a fluorescence image (and Dice/F1 of its labels) against a reference image (masks)",
                       epilog="examples:\n  dmicro evaluate phase.zarr --reference field.zarr --ssim-map ssim.zarr\n"
                              "  dmicro evaluate nuclei.zarr --reference nuclei/nuclei_0000.zarr\n"
                              "  dmicro evaluate nuclei.zarr --reference img2d.tif --reference-mask mask2d.tif "
                              "--pixel-size-um 0.5",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("phase", help="phase map .zarr (radians), or a fluorescence store from dmicro reconstruct or "
                   "dmicro segment")
    p.add_argument("--reference", required=True, help="ground-truth field or phase map; fluorescence: the image "
                   "that was simulated (a fluorescence store, with its labels, or a TIFF)")
    p.add_argument("--reference-mask", help="fluorescence: instance mask TIFF of a TIFF reference")
    p.add_argument("--pixel-size-um", type=float, default=None,
                   help="fluorescence: the pixel size of a TIFF reference, µm (checked against the image's)")
    p.add_argument("--iou-threshold", type=float, default=0.5, help="fluorescence: IoU of a matched instance (0.5)")
    p.add_argument("--ssim-map", help="also write the SSIM map to this .zarr")
    p.add_argument("--no-align-offset", action="store_true",
                   help="score the phase as given (default: remove the median global phase offset first, "
                        "which no intensity microscope can observe; the report gives offset_rad)")
    p.add_argument("--reference-convention", choices=("background", "absolute"), default="background",
                   help="read a reference field's phase relative to its background (default) or mod 2π")
    _add_overwrite_flags(p, "an existing napari-dmicro SSIM map")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("models", help="list the shipped models with their cards")
    p.add_argument("--verbose", action="store_true", help="print the whole model cards")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("info", help="print the kind, size, units and provenance of a file")
    p.add_argument("path")
    p.set_defaults(func=cmd_info)
    return parser


def _check_device(args) -> None:
    """An unavailable ``--device`` is refused before any work."""
    if getattr(args, "device", None) is None:
        return
    from .device import resolve_device

    try:
        resolve_device(args.device)
    except RuntimeError as exc:
        raise CLIError(str(exc)) from None


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``dmicro info … | head -1``): stop without a traceback."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # the final flush must not fail again
    except (OSError, ValueError):  # stdout is not a file (tests, embedding): nothing to protect
        pass
    return 128 + 13  # as if killed by SIGPIPE


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1

    def say(kind: str, message) -> None:
        print(for_terminal(f"dmicro {args.command}: {kind}: {message}"), file=sys.stderr)

    def show_warning(message, category, filename, lineno, file=None, line=None):
        say("warning", message)  # one readable line, not a source listing

    try:
        with warnings.catch_warnings():
            warnings.showwarning = show_warning
            _check_device(args)
            status = args.func(args)
            sys.stdout.flush()
            return status
    except BrokenPipeError:
        return _quiet_broken_pipe()
    except (CLIError, ValueError, OSError) as exc:  # expected failures; anything else is a bug: traceback
        from pydantic import ValidationError

        if isinstance(exc, ValidationError):
            message = _validation_message(exc)
        elif isinstance(exc, OSError) and exc.strerror:  # not "[Errno 28] …"
            message = exc.strerror + (f": {exc.filename}" if exc.filename else "")
        else:
            message = str(exc)
        say("error", with_cli_flags(message))
        return 2
    except MemoryError:
        say("error", "not enough memory for this input; use a smaller field or a machine with more memory")
        return 2
    except KeyboardInterrupt:
        print(f"dmicro {args.command}: cancelled", file=sys.stderr)
        return 130


def _validation_message(exc) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {msg}" if where else msg)
    return "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
