"""Why the measured DSB2018 nuclei image scores lower than the generated fields (docs/fluorescence.md, "Why the
measured image scores lower").

    python benchmarks/fluo_gap.py [--count 8] [--realdata ../shared/realdata]

Measured: ``fluo_stardist_dsb2018_nuclei/img2d.tif`` + ``mask2d.tif`` (512², 8-bit values 0…235 in a uint16 file,
125 manual nuclei), ASSUMED 0.5 µm per pixel (as benchmarks/fluo_statistics.py). Generated: ``--count`` fields of
512² at the same 0.5 µm, seeds ``(EVAL_SEED, k)`` (not a training stream), styles "dsb" (density matched) and
"dsb-hard" (the same with the realism terms). Measured here:

- ``noise``: the camera noise of the measured "ground truth". Per pixel, the Immerkær residual (the image convolved
  with [[1,-2,1],[-2,4,-2],[1,-2,1]] / 6: zero for any locally linear image, unit std for unit white noise) away
  from nucleus edges (> 3 µm outside or > 1.5 µm inside a nucleus), binned by the local 7×7 mean; the robust (MAD)
  variance per bin is fitted by var = a + b·mean (DN², Poisson + read). σ of the min–max normalised image, its
  equivalent photons / read noise, and the PSNR ceiling 10·log10(1 / mean σ²) that a PERFECT noise-free
  reconstruction reaches when scored against the noisy image. The same estimator is run on generated fields given
  that noise (``camera_reference``), to show it recovers what was injected.
- ``models``: the shipped models' held-out and DSB2018 PSNRs (results/fluorescence_<model>.json) beside the PSNR
  the noise alone predicts on DSB2018 (held-out error + σ², independent errors) and the noise-corrected DSB2018 PSNR
  (measured MSE − σ²).
- ``texture``: the radially averaged power spectrum of the relative intensity inside nuclei ((I − nucleus mean) /
  nucleus mean, nuclei eroded by 1 µm), in frequency bands (cycles/µm; Nyquist 1.0): the fraction of the relative
  variance in each band (the measured one minus its white-noise floor), and of the whole min–max normalised images.
- ``background``: far background (> 3 µm from any nucleus) / median nucleus, the ring 0.5–1.5 µm outside nuclei /
  far background (light spread around nuclei), and the relative std of the far background smoothed by 2 µm (its
  noise share subtracted): structure in the background.
- ``intensity``: max / 99.9th percentile (what min–max normalisation is set by), grey levels and the quantisation
  variance beside the noise variance.

Writes benchmarks/results/fluo_gap.json (and summarises results/fluo_hard/fluorescence_<model>.json, the held-out
harder set, when present).
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
from scipy import ndimage, signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fluo_statistics import DSB_PIXEL_SIZE_UM, EVAL_SEED, ROOT, _summary, arguments, load_dsb  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
STYLES = ("dsb", "dsb-hard")
MODELS = ("fluo-x64", "fluo-x256", "fluo-x1024")
#: frequency bands of the spectra, cycles/µm (0.5 µm pixels: Nyquist 1.0)
BAND_EDGES = (0.02, 0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.8, 1.0)
IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float) / 6.0


# ---- noise ------------------------------------------------------------------------------------------------

def noise_model(image: np.ndarray, labels: np.ndarray, pixel_size_um: float) -> dict:
    """Fit var = a + b·mean of the pixel noise (image units²) from the Immerkær residual away from nucleus edges."""
    img = np.asarray(image, np.float64)
    r = signal.convolve2d(img, IMMERKAER, mode="valid")
    mean = ndimage.uniform_filter(img, 7)[1:-1, 1:-1]
    outside = ndimage.distance_transform_edt(labels == 0) * pixel_size_um
    inside = ndimage.distance_transform_edt(labels > 0) * pixel_size_um
    flat = ((outside > 3.0) | (inside > 1.5))[1:-1, 1:-1]
    edges = np.quantile(mean[flat], np.linspace(0, 1, 13))
    mu, var, n = [], [], []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        s = flat & (mean >= lo) & (mean <= hi)
        if s.sum() > 500:
            mu.append(float(mean[s].mean()))
            var.append(float((1.4826 * np.median(np.abs(r[s] - np.median(r[s])))) ** 2))
            n.append(int(s.sum()))
    b, a = np.polyfit(mu, var, 1, w=np.sqrt(n))
    a, b = max(float(a), 0.0), max(float(b), 0.0)
    rng = float(img.max() - img.min())
    pixel_var = a + b * np.clip(img, 0, None)
    mean_var_norm = float(pixel_var.mean()) / rng ** 2
    return {"fit": "var = a + b·mean (image units)", "a": a, "b": b, "bins_mean": mu, "bins_var": var,
            "sigma_at_background": math.sqrt(a + b * float(np.median(img[labels == 0]))),
            "sigma_at_nuclei": math.sqrt(a + b * float(np.median(img[labels > 0]))),
            "range": rng, "sigma_normalised_rms": math.sqrt(mean_var_norm),
            "psnr_ceiling_db": 10 * math.log10(1.0 / mean_var_norm),
            "_pixel_var": pixel_var}


def equivalent_camera(a: float, b: float, peak: float) -> dict:
    """Photons at the image maximum and read noise (e⁻) whose Poisson + Gaussian noise is var = a + b·I."""
    if b <= 0:
        return {"photons_at_max": None, "read_noise_e": None}
    photons = peak / b
    return {"photons_at_max": photons, "read_noise_e": math.sqrt(a) / b}


# ---- spectra ----------------------------------------------------------------------------------------------

def _bands(power: np.ndarray, pixel_size_um: float) -> tuple[list[float], list[int]]:
    fy = np.fft.fftfreq(power.shape[0], pixel_size_um)
    fx = np.fft.fftfreq(power.shape[1], pixel_size_um)
    f = np.hypot(fy[:, None], fx[None, :])
    out, count = [], []
    for lo, hi in zip(BAND_EDGES[:-1], BAND_EDGES[1:], strict=True):
        s = (f >= lo) & (f < hi + (1e-9 if hi == BAND_EDGES[-1] else 0))
        out.append(float(power[s].sum()))
        count.append(int(s.sum()))
    return out, count


def nucleus_texture_bands(image, labels, pixel_size_um: float, pixel_var=None) -> dict:
    """Relative variance inside nuclei per frequency band (white-noise floor of ``pixel_var`` subtracted)."""
    img = np.asarray(image, np.float64)
    inner = ndimage.binary_erosion(labels > 0, iterations=max(1, round(1.0 / pixel_size_um))) & (labels > 0)
    lab = np.where(inner, labels, 0)
    ids = np.unique(lab[lab > 0])
    means = np.zeros(int(labels.max()) + 1)
    means[ids] = ndimage.mean(img, lab, ids)
    m = means[lab]
    c = np.where(inner, (img - m) / np.maximum(m, 1e-12), 0.0)
    n = int(inner.sum())
    power = np.abs(np.fft.fft2(c)) ** 2 / (c.size * n)  # sums to the mean of c² over the nuclei
    bands, count = _bands(power, pixel_size_um)
    noise_rel_var = float(np.mean(pixel_var[inner] / m[inner] ** 2)) if pixel_var is not None else 0.0
    floor = [noise_rel_var * k / c.size for k in count]
    texture = [b - fl for b, fl in zip(bands, floor, strict=True)]
    return {"relative_variance": float(np.mean(c[inner] ** 2)) - noise_rel_var, "noise_relative_variance": noise_rel_var,
            "bands": texture, "bands_raw": bands}


def image_bands(image, pixel_size_um: float, pixel_var=None) -> dict:
    """Band powers of the whole min–max normalised image (variance per band; noise floor subtracted)."""
    x = np.asarray(image, np.float64)
    rng = float(x.max() - x.min())
    x = (x - x.min()) / rng
    x = x - x.mean()
    power = np.abs(np.fft.fft2(x)) ** 2 / x.size ** 2
    bands, count = _bands(power, pixel_size_um)
    nv = float(pixel_var.mean()) / rng ** 2 if pixel_var is not None else 0.0
    return {"variance": float(x.var()) - nv, "bands": [b - nv * k / x.size for b, k in zip(bands, count, strict=True)]}


# ---- background and intensity ----------------------------------------------------------------------------

def background(image, labels, pixel_size_um: float, pixel_var=None) -> dict:
    img = np.asarray(image, np.float64)
    dist = ndimage.distance_transform_edt(labels == 0) * pixel_size_um
    ids = np.unique(labels[labels > 0])
    nucleus = float(np.median(ndimage.mean(img, labels, ids)))
    far, ring = dist > 3.0, (dist > 0.5) & (dist <= 1.5)
    s_px = 2.0 / pixel_size_um
    smooth = ndimage.gaussian_filter(img, s_px)[far]
    noise_share = float(pixel_var[far].mean()) / (4 * math.pi * s_px ** 2) if pixel_var is not None else 0.0
    return {"far_over_nucleus": float(img[far].mean()) / nucleus, "ring_over_far": float(img[ring].mean() / img[far].mean()),
            "far_relative_std_2um": math.sqrt(max(float(smooth.var()) - noise_share, 0.0)) / float(smooth.mean()),
            "far_fraction": float(far.mean())}


def intensity(image, labels, pixel_var=None) -> dict:
    """Range, grey levels and quantisation, and fluo_statistics' intensity statistics (nuclei_statistics: mean
    nucleus / mean background, pixel fractions by intensity / 99.9th percentile)."""
    from napari_dmicro.phantoms import nuclei_statistics

    x = np.asarray(image, np.float64)
    rng = float(x.max() - x.min())
    levels = np.unique(x)
    step = float(np.min(np.diff(levels))) if levels.size > 1 else 0.0
    stats = _summary([nuclei_statistics(x, labels)])
    out = {"max_over_p99.9": float(x.max() / np.percentile(x, 99.9)), "min_over_max": float(x.min() / x.max()),
           "p0.1_over_max": float(np.percentile(x, 0.1) / x.max()), "grey_levels": int(levels.size),
           **{k: stats[k] for k in ("nucleus_to_background_median", "pixels_below_0.2_fraction",
                                    "pixels_0.4_to_0.9_fraction")}}
    if levels.size < 4096:  # an integer camera image: quantisation variance step²/12 vs the noise
        out["quantisation_variance_normalised"] = step ** 2 / 12 / rng ** 2
        if pixel_var is not None:
            out["noise_variance_normalised"] = float(pixel_var.mean()) / rng ** 2
    return out


# ---- the shipped models ----------------------------------------------------------------------------------

def model_gap(noise_var_norm: float) -> dict:
    out = {}
    for name in MODELS:
        path = RESULTS / f"fluorescence_{name}.json"
        if not path.exists():
            continue
        r = json.loads(path.read_text())
        held, meas = r["heldout"]["psnr_db"], r["measured"]["psnr_db"]
        mse_meas = 10 ** (-meas / 10)
        row = {"heldout_psnr_db": held, "dsb2018_psnr_db": meas,
               "dsb2018_predicted_by_noise_db": -10 * math.log10(10 ** (-held / 10) + noise_var_norm),
               "dsb2018_noise_corrected_db": (-10 * math.log10(mse_meas - noise_var_norm)
                                              if mse_meas > noise_var_norm else None)}
        hard = RESULTS / "fluo_hard" / f"fluorescence_{name}.json"
        if hard.exists():
            h = json.loads(hard.read_text())["heldout"]
            row["hard_psnr_db"], row["hard_ssim"], row["hard_flat_psnr_db"] = h["psnr_db"], h["ssim"], h["flat_psnr_db"]
        out[name] = row
    return out


def main(argv=None) -> int:
    sys.path.insert(0, str(ROOT / "src"))
    from napari_dmicro.io.atomic import write_text_atomically
    from napari_dmicro.phantoms import camera_reference, make_fluorescence_field

    args = arguments(argv, __doc__, 8)
    dsb = load_dsb(args.realdata)
    ps = DSB_PIXEL_SIZE_UM
    noise = noise_model(dsb.image, dsb.labels, ps)
    pv = noise.pop("_pixel_var")
    camera = equivalent_camera(noise["a"], noise["b"], float(dsb.image.max()))
    noise["equivalent_camera"] = camera
    result = {"pixel_size_um_assumed": ps, "eval_seed": EVAL_SEED, "fields_per_style": args.count,
              "band_edges_cycles_per_um": list(BAND_EDGES), "noise": noise,
              "models": model_gap(noise["sigma_normalised_rms"] ** 2),
              "DSB2018 img2d": {"texture": nucleus_texture_bands(dsb.image, dsb.labels, ps, pv),
                                "image_spectrum": image_bands(dsb.image, ps, pv),
                                "background": background(dsb.image, dsb.labels, ps, pv),
                                "intensity": intensity(dsb.image, dsb.labels, pv)}}
    for style in STYLES:
        rows = []
        for k in range(args.count):
            f = make_fluorescence_field(EVAL_SEED, k, style=style, size_px=512, pixel_size_um=ps)
            rows.append({"texture": nucleus_texture_bands(f.image, f.labels, ps),
                         "image_spectrum": image_bands(f.image, ps), "background": background(f.image, f.labels, ps),
                         "intensity": intensity(f.image, f.labels)})
        result[f"generator {style}"] = _mean_rows(rows)
    # the estimator on generated fields given the equivalent camera noise: does it recover the injected σ?
    check = []
    for k in range(min(args.count, 4)):
        f = make_fluorescence_field(EVAL_SEED, k, style="dsb-hard", size_px=512, pixel_size_um=ps)
        img = f.image * float(dsb.image.max())  # on the measured image's scale (DN)
        noisy = camera_reference(img, camera["photons_at_max"], camera["read_noise_e"], seed=k)
        est = noise_model(noisy, f.labels, ps)
        est.pop("_pixel_var")
        truth = (img - img.min()) / (noisy.max() - noisy.min())
        injected = float(np.mean(img / camera["photons_at_max"] * img.max() + (camera["read_noise_e"] * img.max()
                                                                                / camera["photons_at_max"]) ** 2))
        nn = (noisy - noisy.min()) / (noisy.max() - noisy.min())
        check.append({"field": k, "sigma_injected_dn": math.sqrt(injected), "a": est["a"], "b": est["b"],
                      "sigma_estimated_dn": math.sqrt(est["a"] + est["b"] * float(img.mean())),
                      "psnr_clean_vs_noisy_db": 10 * math.log10(1.0 / float(np.mean((truth - nn) ** 2)))})
    result["estimator_check"] = check
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_text_atomically(RESULTS / "fluo_gap.json", json.dumps(result, indent=2) + "\n")
    _print(result)
    return 0


def _mean_rows(rows: list[dict]) -> dict:
    out = {}
    for key in rows[0]:
        out[key] = {}
        for sub, v in rows[0][key].items():
            vals = [r[key][sub] for r in rows]
            out[key][sub] = (np.mean(vals, axis=0).tolist() if isinstance(v, list) else float(np.mean(vals)))
    return out


def _print(r: dict) -> None:
    n = r["noise"]
    print(f"DSB2018 noise: var = {n['a']:.2f} + {n['b']:.4f}·I DN² (σ {n['sigma_at_background']:.2f} DN background, "
          f"{n['sigma_at_nuclei']:.2f} DN nuclei; range {n['range']:.0f}); σ normalised {n['sigma_normalised_rms']:.4f}"
          f" → PSNR ceiling {n['psnr_ceiling_db']:.2f} dB; equivalent camera {n['equivalent_camera']}")
    for name, m in r["models"].items():
        print(f"  {name}: " + ", ".join(f"{k} {v:.2f}" for k, v in m.items() if v is not None))
    for c in r["estimator_check"]:
        print(f"  check field {c['field']}: σ injected {c['sigma_injected_dn']:.2f} DN, estimated "
              f"{c['sigma_estimated_dn']:.2f} DN, clean vs noisy {c['psnr_clean_vs_noisy_db']:.2f} dB")
    for name in ("DSB2018 img2d", *(f"generator {s}" for s in STYLES)):
        g = r[name]
        print(f"{name:20s} texture rel var {g['texture']['relative_variance']:.4f} bands(1e-3) "
              + " ".join(f"{b * 1e3:6.2f}" for b in g["texture"]["bands"]))
        print(f"{'':20s} image var {g['image_spectrum']['variance']:.4f} bands(1e-4) "
              + " ".join(f"{b * 1e4:6.2f}" for b in g["image_spectrum"]["bands"]))
        print(f"{'':20s} " + ", ".join(f"{k} {v:.3g}" for k, v in {**g["background"], **g["intensity"]}.items()))


if __name__ == "__main__":
    raise SystemExit(main())
