"""``dmicro simulate|reconstruct|segment|evaluate`` for fluorescence models (issue 12).

The commands of :mod:`napari_dmicro.cli` hand over here when the model (or the input) is fluorescence. Every
rule lives in the engine: ``dm.simulate`` / ``dm.reconstruct`` / ``dm.segment`` / ``dm.evaluate_fluorescence``
and the store functions of :mod:`napari_dmicro.io.fluorescence`; this module reads the files, prints what is
done and writes the results atomically.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from .cli_checks import CLIError, batch_pairs, replace_rule
from .inference.fluorescence import input_pixel_size_um

#: inputs of ``dmicro simulate`` with a fluorescence model: our fluorescence stores and measured TIFFs
IMAGE_INPUTS = (".zarr", ".tif", ".tiff")
TIFF = (".tif", ".tiff")


def _command() -> str:
    return " ".join(["dmicro", *sys.argv[1:]])


def is_fluorescence_model(model) -> bool:
    return getattr(model, "modality", "qpm") == "fluorescence"


def read_image_input(source: Path, pixel_size_um: float | None, channel: int | None):
    """A 2-D fluorescence image to simulate: a measured TIFF (the array; its pixel size is ``--pixel-size-um``,
    given to dm.simulate: TIFFs are not trusted to record it) or a fluorescence store (its metadata); anything
    else is refused."""
    from .io.fields import read_image
    from .io.fluorescence import load_fluorescence_tiff

    if source.suffix.lower() in TIFF:
        if pixel_size_um is None:
            raise CLIError(f"{source} is a TIFF, whose pixel size is not read from the file (rarely recorded "
                           "reliably): give --pixel-size-um (the specimen pixel in µm; e.g. 0.5 for the DSB2018 "
                           "nuclei) — it is never guessed")
        return load_fluorescence_tiff(source, pixel_size_um=pixel_size_um, channel=channel).image
    image = read_image(source, lazy=False)
    if image.kind != "fluorescence":
        raise CLIError(f"{source} is a {image.kind}, not a fluorescence image; a fluorescence model simulates a "
                       "fluorescence store (dmicro phantom --modality fluorescence) or a 2-D TIFF")
    return image


def simulate(args, model) -> int:
    """``dmicro simulate IMAGE -o MEAS.zarr --model fluo-…``: the measurement store of each input image."""
    from . import api
    from .io.fluorescence import write_fluorescence_measurement

    pairs = batch_pairs(args, args.field, args.output, IMAGE_INPUTS, "fluorescence images")
    images = [read_image_input(source, args.pixel_size_um, args.channel) for source, _ in pairs]  # all first
    for (source, target), image in zip(pairs, images, strict=True):
        start = time.perf_counter()
        meas = api.simulate(image, model, photons=args.photons, read_noise=args.read_noise, seed=args.seed,
                            device=args.device, pixel_size_um=args.pixel_size_um, wavelength_um=args.wavelength_um,
                            background_photons=args.background_photons)
        meas.attrs.update(source_image=str(source), command=_command())
        a = meas.attrs
        ps = input_pixel_size_um(a)
        rows, cols = a.get("source_image_shape", a["image_shape"])
        print(f"{source}: {rows}×{cols} px at {ps:g} µm ({a['pixel_size_source']}); model grid "
              f"{a['pixel_size_um']:g} µm: {a.get('grid_adaptation', 'on the model grid (nothing resampled)')}")
        write_fluorescence_measurement(target, meas, **replace_rule(args))
        t, h, w = meas.data.shape
        print(f"wrote {t}×{h}×{w} measurement ({t} patterns, bin {a['bin_px']}, x{a['compression']:g}, camera "
              f"pixel {a['camera_pixel_size_um']:g} µm) to {target} in {time.perf_counter() - start:.2f} s")
    if len(pairs) > 1:
        print(f"wrote {len(pairs)} measurements to {args.output}")
    return 0


def _provenance(meas, source, model, model_name, seconds: float) -> dict:
    a = meas.attrs
    keep = ("n_patterns", "bin_px", "compression", "photons_per_unit", "read_noise_e", "background_photons", "seed",
            "image_offset", "image_scale", "grid_adaptation")
    return {"source_measurement": str(source), "model": model_name, "model_file": getattr(model, "source", None),
            "simulated_by": a.get("model"), **{k: a[k] for k in keep if k in a},
            "values": "normalised density: the simulated image's (value − image_offset) / image_scale, clipped to "
                      "[0, 1]", "seconds": round(seconds, 3), "command": _command()}


def reconstruct(args, model, pairs) -> int:
    """``dmicro reconstruct MEAS.zarr -o IMAGE.zarr --model fluo-…``: a fluorescence store on the input's grid."""
    from . import api
    from .io.fluorescence import read_fluorescence_measurement
    from .io.store import write_fluorescence

    _refuse_qpm_flags(args)
    measurements = [read_fluorescence_measurement(source) for source, _ in pairs]  # all readable before any work
    for (source, target), meas in zip(pairs, measurements, strict=True):
        start = time.perf_counter()
        image = api.reconstruct(meas, model, device=args.device)
        seconds = time.perf_counter() - start
        ps = input_pixel_size_um(meas.attrs)
        write_fluorescence(target, image, pixel_size_um=ps, emission_wavelength_um=meas.attrs["emission_wavelength_um"],
                           attrs={"content": "reconstruction", **_provenance(meas, source, model, args.model, seconds)},
                           **replace_rule(args))
        print(f"wrote {image.shape[0]}×{image.shape[1]} fluorescence image ([0, 1], {ps:g} µm pixels) to {target} "
              f"in {seconds:.2f} s")
    return 0


def _refuse_qpm_flags(args) -> None:
    given = [flag for flag, value in (("--pixel-size-um", args.pixel_size_um), ("--overlap", args.overlap),
                                      ("--stack-axis", args.stack_axis), ("--workers", args.workers),
                                      ("--scheduler", args.scheduler)) if value is not None]
    if given:
        raise CLIError(f"{', '.join(given)}: not used with a fluorescence model (the measurement store records its "
                       "pixel sizes; decoding is tiled exactly in one process); drop them")


def segment(args) -> int:
    """``dmicro segment MEAS.zarr -o LABELS.zarr|.tif --model fluo-seg-…``: instance labels on the input's grid."""
    from . import api
    from .io.fluorescence import read_fluorescence_measurement
    from .io.store import write_fluorescence

    model = api.load_model(args.model, device=args.device)
    if not is_fluorescence_model(model):
        raise CLIError(f"{args.model} is a phase model; dmicro segment needs a task-aware fluorescence model")
    pairs = _segment_pairs(args)
    measurements = [read_fluorescence_measurement(source) for source, _ in pairs]
    for (source, target), meas in zip(pairs, measurements, strict=True):
        start = time.perf_counter()
        labels = api.segment(meas, model, device=args.device, min_size_px=args.min_size_px)
        seconds = time.perf_counter() - start
        ps = input_pixel_size_um(meas.attrs)
        attrs = {"content": "segmentation: labels = instances from the segmentation head; fluorescence = the "
                            "reconstruction of the same measurement",
                 "n_instances": int(labels.max()), "min_size_px": args.min_size_px,
                 **_provenance(meas, source, model, args.model, seconds)}
        if target.suffix.lower() in TIFF:
            _write_labels_tiff(target, labels, ps, attrs, args)
        else:
            image = api.reconstruct(meas, model, device=args.device)
            write_fluorescence(target, image, labels, pixel_size_um=ps,
                               emission_wavelength_um=meas.attrs["emission_wavelength_um"], attrs=attrs,
                               **replace_rule(args))
        print(f"wrote {int(labels.max())} instance(s), {labels.shape[0]}×{labels.shape[1]} px at {ps:g} µm, to "
              f"{target} in {seconds:.2f} s")
    return 0


def _segment_pairs(args) -> list[tuple[Path, Path]]:
    """(measurement, output) pairs: a label TIFF for one measurement, else label stores as for the other commands
    (all checked before any work)."""
    from .cli_checks import batch_inputs
    from .io.targets import check_not_input

    out = Path(os.fspath(args.output)).expanduser()
    if out.suffix.lower() not in TIFF:
        return batch_pairs(args, args.measurement, args.output, (".zarr",), "measurements")
    if batch_inputs(args.measurement, (".zarr",), "measurements") is not None:
        raise CLIError("a label TIFF holds one measurement's labels; for a folder or glob give an output folder "
                       "(one label store per input)")
    source = Path(os.fspath(args.measurement)).expanduser()
    check_not_input(out, [source])
    if os.path.lexists(out) and (not out.is_file() or not (args.overwrite or args.overwrite_foreign)):
        raise CLIError(f"{out} already exists; give --overwrite to replace the file" if out.is_file() else
                       f"{out} exists and is not a file; choose another name")
    return [(source, out.absolute())]


def _write_labels_tiff(target: Path, labels: np.ndarray, pixel_size_um: float, attrs: dict, args) -> None:
    """An int32 label TIFF, atomically, its pixel size as the TIFF resolution (pixels per cm) and in the
    description (JSON)."""
    import tifffile

    from .io.atomic import write_file_atomically

    per_cm = 1e4 / pixel_size_um
    description = json.dumps({"napari_dmicro": {"kind": "labels", "pixel_size_um": pixel_size_um, **attrs}},
                             default=str)
    write_file_atomically(target, lambda tmp: tifffile.imwrite(
        tmp, labels.astype(np.int32), resolution=(per_cm, per_cm), resolutionunit="CENTIMETER",
        description=description, metadata=None))


def _reference(args):
    """(image, labels or None, pixel size) of the reference: a fluorescence store (its labels), or a measured TIFF
    (``--reference-mask``: its mask TIFF) at ``--pixel-size-um``, which the TIFF does not record."""
    from .io.fluorescence import load_fluorescence_tiff, read_fluorescence

    p = Path(os.fspath(args.reference))
    if p.suffix.lower() in TIFF:
        if args.pixel_size_um is None:
            raise CLIError(f"the reference {p} is a TIFF, which does not record its pixel size: give --pixel-size-um "
                           "(µm) so that the grids are checked to agree")
        return load_fluorescence_tiff(p, args.reference_mask, pixel_size_um=args.pixel_size_um)
    if args.reference_mask:
        raise CLIError("--reference-mask goes with a TIFF reference; a fluorescence store carries its own labels")
    return read_fluorescence(p)


def evaluate(args) -> int:
    """``dmicro evaluate IMAGE.zarr --reference REF``: PSNR/SSIM of a reconstruction, Dice/F1 of its labels."""
    from . import api
    from .io.fluorescence import read_fluorescence

    if args.ssim_map:
        raise CLIError("--ssim-map is for phase maps; a fluorescence evaluation prints its scores")
    pred = read_fluorescence(args.phase)
    ref_image, ref_labels, ref_ps = _reference(args)
    if abs(ref_ps - pred.pixel_size_um) > 1e-9 * pred.pixel_size_um:
        raise CLIError(f"{args.phase} has {pred.pixel_size_um:g} µm pixels but the reference {ref_ps:g} µm: the "
                       "reconstruction is on the simulated image's grid; compare it with that image")
    labels = pred.labels if ref_labels is not None else None
    scores = api.evaluate_fluorescence(pred.image, ref_image, keep_ssim_map=False)
    report = {"psnr_db": scores.psnr_db, "ssim": scores.ssim, "image_convention": scores.extra["convention"]}
    if labels is not None:
        report.update(api.evaluate_labels(labels, ref_labels, iou_threshold=args.iou_threshold))
    if pred.labels is None:
        report["labels"] = f"{args.phase} holds no labels (dmicro segment writes them): masks not scored"
    elif ref_labels is None:
        report["labels"] = "the reference holds no labels (give --reference-mask): masks not scored"
    report["pixel_size_um"] = pred.pixel_size_um
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in report.items()}, indent=2))
    return 0


__all__ = ["evaluate", "is_fluorescence_model", "read_image_input", "reconstruct", "segment", "simulate"]
