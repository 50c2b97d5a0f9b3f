"""Seeded synthetic fluorescence fields of stained nuclei with instance labels (issue 12, "Data").

A field is a fluorophore density ``image`` (float32, ≥ 0, scaled so its maximum is 1) and an instance label
image ``labels`` (int32, 0 = background, nuclei 1..N contiguous), at ``pixel_size_um`` (default 0.325 µm:
a 20x objective on a 6.5 µm camera pixel). Every length is given in micrometres and converted with the
pixel size, so the same configuration at another pixel size gives the same specimen in µm.

What a field contains (:class:`FluorescencePhantomConfig`; docs/phantoms.md compares it with DSB2018):

* interphase nuclei: ellipses with an irregular contour (random low-order harmonics of the radius), an
  equivalent diameter drawn per nucleus around a per-field median, random orientation; brightness varies
  between nuclei (log-normal), a slight dome towards the centre and a chromatin texture;
* mitotic nuclei: smaller, elongated (condensed chromatin), 2–4x brighter, some as telophase doublets
  (two labels);
* placement with density from sparse to confluent (the covered fraction of the field is drawn per field);
  a fraction of nuclei is placed in contact with an earlier one (clusters): those touch their neighbour
  (shared boundary, distinct labels); all others keep at least one background pixel from every other nucleus;
* optics and background: Gaussian blur, a constant background, slow illumination non-uniformity and
  out-of-focus haze around the nuclei. No camera noise: photons and noise belong to the forward model.
* optional realism (off by default; on in the "hard" styles, docs/fluorescence.md "Why the measured image
  scores lower"): band-limited chromatin texture with a power-law spectrum (``chromatin_*``), PSF wings that
  spread part of each nucleus' light over a few µm (``psf_wing*``), and unlabelled out-of-focus nuclei from
  other planes (``out_of_focus_*``). They draw from their own random stream, so the default fields are
  unchanged bit for bit. :func:`camera_reference` gives the noisy "ground truth" a camera would record.

Same ``(seed, index, configuration)`` → the same field, bit for bit (``numpy.random.SeedSequence([seed,
index])``, as :func:`~napari_dmicro.phantoms.field_seed`). Training and evaluation use disjoint seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field, field_validator
from scipy import fft as sp_fft
from scipy import ndimage

from ..config import _Config, check_pixel_size_um
from .generate import field_seed
from .random_fields import _slow_field, _texture_pair, filtered_white_noise, unit_std

Range = tuple[float, float]

#: default specimen pixel size, µm: a 20x objective on a 6.5 µm camera pixel
FLUO_PIXEL_SIZE_UM = 0.325
#: emission wavelength recorded with generated fields, µm (Hoechst 33342 / DAPI emission peak, ~461 nm)
FLUO_EMISSION_WAVELENGTH_UM = 0.461


class FluorescencePhantomConfig(_Config):
    """Parameters of the nuclei generator (frozen; lengths in µm, ``(lo, hi)`` drawn uniformly per field)."""

    size_px: tuple[int, int] = Field((256, 256), description="(rows, cols) of the field")
    pixel_size_um: float = Field(FLUO_PIXEL_SIZE_UM, gt=0, description="specimen pixel pitch, µm")
    emission_wavelength_um: float = Field(FLUO_EMISSION_WAVELENGTH_UM, gt=0,
                                          description="emission wavelength recorded as metadata, µm")
    cover_fraction: Range = Field((0.03, 0.45), description="fraction of the field covered by nuclei")
    diameter_um: Range = Field((11.0, 13.5), description="median equivalent diameter of a field's nuclei, µm")
    diameter_spread: float = Field(0.1, ge=0, description="log-normal σ of a nucleus' diameter around the median")
    aspect: Range = Field((0.55, 0.95), description="minor/major axis ratio of an interphase nucleus")
    irregularity: float = Field(0.05, ge=0, le=0.3, description="relative amplitude of contour harmonics 2..5")
    cluster_fraction: Range = Field((0.05, 0.3), description="probability a nucleus is placed touching another")
    brightness_spread: float = Field(0.22, ge=0, description="log-normal σ of nucleus brightness")
    dome: float = Field(0.2, ge=0, le=0.9, description="relative intensity drop from centre to rim")
    texture_amplitude: Range = Field((0.08, 0.2), description="relative std of the chromatin texture")
    texture_um: float = Field(0.6, gt=0, description="correlation length of the chromatin texture, µm")
    mitotic_fraction: Range = Field((0.02, 0.08), description="fraction of nuclei that are mitotic")
    mitotic_brightness: Range = Field((3.0, 5.0), description="mitotic / interphase brightness")
    blur_um: Range = Field((0.35, 0.7), description="σ of the Gaussian optical blur, µm")
    background: Range = Field((0.35, 0.65), description="background level / median nucleus brightness")
    haze: Range = Field((0.05, 0.15), description="out-of-focus haze around nuclei / their brightness")
    haze_um: float = Field(4.0, gt=0, description="σ of the out-of-focus haze, µm")
    illumination_variation: float = Field(0.1, ge=0, lt=1, description="± slow relative illumination change")
    chromatin_amplitude: Range = Field((0.0, 0.0), description="relative std of the band-limited chromatin "
                                       "texture inside nuclei, before the optical blur (0: off)")
    chromatin_period_um: Range = Field((2.0, 20.0), description="shortest and longest period of the chromatin "
                                       "texture, µm (its spectrum is zero outside 1/hi … 1/lo cycles/µm)")
    chromatin_exponent: float = Field(3.0, ge=0, le=6, description="power-law slope of the chromatin spectrum: "
                                      "power density ∝ f^-exponent inside the band")
    psf_wing: Range = Field((0.0, 0.0), description="fraction of each nucleus' light moved into a wide PSF wing "
                            "(energy conserving; 0: off)")
    psf_wing_um: float = Field(1.5, gt=0, description="σ of the PSF wing, µm")
    out_of_focus_cover: Range = Field((0.0, 0.0), description="field fraction covered by unlabelled nuclei of "
                                      "other planes (0: off)")
    out_of_focus_blur_um: Range = Field((2.0, 5.0), description="σ of the defocus blur of an out-of-focus "
                                        "nucleus, µm (drawn per nucleus)")
    out_of_focus_brightness: Range = Field((0.2, 0.6), description="brightness of an out-of-focus nucleus / "
                                           "the median in-focus nucleus (drawn per nucleus)")

    @field_validator("pixel_size_um")
    @classmethod
    def _pixel_size(cls, v: float) -> float:
        return check_pixel_size_um(v)

    @field_validator("size_px")
    @classmethod
    def _size(cls, v: tuple[int, int]) -> tuple[int, int]:
        if min(v) < 16:
            raise ValueError(f"size_px={v} is too small; fields are at least 16×16 px")
        return v

    @field_validator("cover_fraction", "diameter_um", "aspect", "cluster_fraction", "texture_amplitude",
                     "mitotic_fraction", "mitotic_brightness", "blur_um", "background", "haze", "chromatin_amplitude",
                     "chromatin_period_um", "psf_wing", "out_of_focus_cover", "out_of_focus_blur_um",
                     "out_of_focus_brightness")
    @classmethod
    def _range(cls, v: Range) -> Range:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"range {v} must satisfy 0 ≤ lo ≤ hi")
        return v

    @field_validator("chromatin_period_um", "out_of_focus_blur_um")
    @classmethod
    def _positive_range(cls, v: Range) -> Range:
        if v[0] <= 0:
            raise ValueError(f"range {v} must be > 0 (µm)")
        return v

    @field_validator("psf_wing")
    @classmethod
    def _fraction_range(cls, v: Range) -> Range:
        if v[1] >= 1:
            raise ValueError(f"psf_wing={v} must stay below 1 (the fraction of the light moved into the wing)")
        return v

    @property
    def realism(self) -> bool:
        """Whether any of the optional realism terms (chromatin, PSF wing, out-of-focus nuclei) is on."""
        return max(self.chromatin_amplitude[1], self.psf_wing[1], self.out_of_focus_cover[1]) > 0

    @classmethod
    def style(cls, name: str, **overrides) -> FluorescencePhantomConfig:
        """A named density style (:data:`FLUO_STYLES`) with optional field overrides."""
        if name not in FLUO_STYLES:
            raise ValueError(f"style={name!r} is not one of {sorted(FLUO_STYLES)}")
        return cls(**{**FLUO_STYLES[name], **overrides})


#: the realism terms of the "hard" styles, matched to the measured DSB2018 img2d at 0.5 µm
#: (benchmarks/fluo_gap.py, docs/fluorescence.md "Why the measured image scores lower")
HARD: dict = {"chromatin_amplitude": (0.15, 0.3), "chromatin_period_um": (2.0, 20.0), "chromatin_exponent": 2.0,
              "psf_wing": (0.45, 0.65), "psf_wing_um": 2.0, "out_of_focus_cover": (0.08, 0.2),
              "out_of_focus_blur_um": (2.0, 5.0), "out_of_focus_brightness": (0.2, 0.6),
              "background": (0.2, 0.45), "mitotic_brightness": (2.0, 3.0)}

#: named styles: sparse (isolated nuclei), confluent (crowded, many touching), mixed (sparse → confluent,
#: the default for training), dsb (the density of the DSB2018 img2d example, for the docs comparison);
#: hard and dsb-hard: mixed and dsb with chromatin texture, PSF wings and out-of-focus nuclei (:data:`HARD`)
FLUO_STYLES: dict[str, dict] = {
    "sparse": {"cover_fraction": (0.02, 0.08), "cluster_fraction": (0.0, 0.1)},
    "confluent": {"cover_fraction": (0.3, 0.5), "cluster_fraction": (0.3, 0.6)},
    "mixed": {},
    "dsb": {"cover_fraction": (0.16, 0.24), "cluster_fraction": (0.08, 0.2)},
    "hard": HARD,
    "dsb-hard": {"cover_fraction": (0.16, 0.24), "cluster_fraction": (0.08, 0.2), **HARD},
}


@dataclass(frozen=True)
class FluorescenceField:
    """A generated field: ``image`` float32 in [0, 1], ``labels`` int32 (1..N), and how it was made."""

    image: np.ndarray
    labels: np.ndarray
    pixel_size_um: float
    seed: int
    index: int
    style: str | None

    @property
    def n_nuclei(self) -> int:
        return int(self.labels.max())

    def attrs(self) -> dict:
        """Provenance for a store: generator, seed, index, style."""
        return {"source": "napari_dmicro.phantoms.fluorescence", "seed": self.seed, "index": self.index,
                "style": self.style}


def _contour(rng: np.random.Generator, irregularity: float) -> tuple[np.ndarray, np.ndarray]:
    """Relative amplitudes and phases of radius harmonics 2..5 (amplitude falls as 1/k)."""
    k = np.arange(2, 6)
    amp = irregularity * rng.standard_normal(4) / (k - 1)
    return amp, rng.uniform(0, 2 * math.pi, 4)


@dataclass
class _Nucleus:
    a_px: float  # semi-major axis
    b_px: float  # semi-minor axis
    angle: float
    harm_amp: np.ndarray
    harm_phase: np.ndarray
    brightness: float
    texture: float  # relative chromatin texture amplitude

    @property
    def radius_px(self) -> float:
        return math.sqrt(self.a_px * self.b_px)

    def radius_at(self, phi: float) -> float:
        """Contour radius (px) in direction ``phi`` (field coordinates)."""
        t = phi - self.angle
        r = self.a_px * self.b_px / math.hypot(self.b_px * math.cos(t), self.a_px * math.sin(t))
        k = np.arange(2, 6)
        return r * (1.0 + float(np.sum(self.harm_amp * np.cos(k * t + self.harm_phase))))

    def mask(self, cy: float, cx: float, shape: tuple[int, int]):
        """(bbox slices, inside mask, normalised radius) of the nucleus centred at (cy, cx), clipped to the field."""
        r = self.a_px * (1.0 + float(np.abs(self.harm_amp).sum())) + 1.0
        y0, y1 = max(int(cy - r), 0), min(int(cy + r) + 2, shape[0])
        x0, x1 = max(int(cx - r), 0), min(int(cx + r) + 2, shape[1])
        if y0 >= y1 or x0 >= x1:
            return None
        dy = (np.arange(y0, y1, dtype=np.float32) - cy)[:, None]
        dx = (np.arange(x0, x1, dtype=np.float32) - cx)[None, :]
        c, s = math.cos(self.angle), math.sin(self.angle)
        u = dx * c + dy * s
        v = -dx * s + dy * c
        rho = np.sqrt((u / self.a_px) ** 2 + (v / self.b_px) ** 2)
        z = (u + 1j * v) / np.maximum(np.hypot(u, v), 1e-6)  # exp(i·t), t the angle from the major axis
        zk = z * z
        edge = np.ones(z.shape, np.float32)
        for amp, phase in zip(self.harm_amp, self.harm_phase, strict=True):  # harmonics k = 2..5
            edge += amp * (zk * complex(math.cos(phase), math.sin(phase))).real
            zk = zk * z
        rel = rho / edge
        return (slice(y0, y1), slice(x0, x1)), rel < 1.0, rel


def _draw_nucleus(rng, cfg: FluorescencePhantomConfig, median_d_px: float, mitotic: bool) -> _Nucleus:
    d = median_d_px * math.exp(cfg.diameter_spread * rng.standard_normal())
    if mitotic:
        d *= rng.uniform(0.55, 0.75)
        aspect = rng.uniform(0.35, 0.6)
        bright = rng.uniform(*cfg.mitotic_brightness)
        texture = 0.5 * rng.uniform(*cfg.texture_amplitude)
    else:
        aspect = rng.uniform(*cfg.aspect)
        bright = 1.0
        texture = rng.uniform(*cfg.texture_amplitude)
    a = 0.5 * d / math.sqrt(aspect)  # equal area to a disc of diameter d
    amp, phase = _contour(rng, cfg.irregularity)
    bright *= math.exp(cfg.brightness_spread * rng.standard_normal())
    return _Nucleus(a, a * aspect, rng.uniform(0, math.pi), amp, phase, bright, texture)


class _Canvas:
    """Label painting with the gap rule: isolated nuclei keep ≥ 1 background px from others; contacts share a border."""

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self.labels = np.zeros(shape, np.int32)
        self.rel = np.ones(shape, np.float32)  # normalised radius inside each nucleus (for the dome)
        self.near = np.zeros(shape, bool)  # nuclei grown by one pixel (4-neighbourhood)
        self.nuclei: list[tuple[_Nucleus, float, float]] = []
        self.area_px = 0

    def try_place(self, nuc: _Nucleus, cy: float, cx: float, contact: bool) -> bool:
        iy, ix = int(cy), int(cx)
        if not contact and 0 <= iy < self.shape[0] and 0 <= ix < self.shape[1] and self.near[iy, ix]:
            return False  # quick rejection: the centre is already taken
        got = nuc.mask(cy, cx, self.shape)
        if got is None:
            return False
        sl, inside, rel = got
        full = math.pi * nuc.a_px * nuc.b_px
        if inside.sum() < max(8.0, 0.25 * full):  # mostly outside the field
            return False
        if contact:
            taken = self.labels[sl] > 0
            if (inside & taken).sum() > 0.15 * inside.sum():
                return False
            inside = inside & ~taken
        elif (inside & self.near[sl]).any():
            return False
        k = len(self.nuclei) + 1
        self.labels[sl][inside] = k
        grown = inside.copy()
        grown[1:, :] |= inside[:-1, :]
        grown[:-1, :] |= inside[1:, :]
        grown[:, 1:] |= inside[:, :-1]
        grown[:, :-1] |= inside[:, 1:]
        self.near[sl] |= grown
        self.rel[sl][inside] = rel[inside]
        self.nuclei.append((nuc, cy, cx))
        self.area_px += int(inside.sum())
        return True


def _populate(rng, cfg: FluorescencePhantomConfig) -> tuple[_Canvas, list[_Nucleus]]:
    h, w = cfg.size_px
    canvas = _Canvas((h, w))
    median_d_px = rng.uniform(*cfg.diameter_um) / cfg.pixel_size_um
    target_px = rng.uniform(*cfg.cover_fraction) * h * w
    p_contact = rng.uniform(*cfg.cluster_fraction)
    p_mitotic = rng.uniform(*cfg.mitotic_fraction)
    typical_area = math.pi * (median_d_px / 2) ** 2
    max_attempts = int(40 * target_px / typical_area) + 40
    for _ in range(max_attempts):
        if canvas.area_px >= target_px:
            break
        mitotic = rng.random() < p_mitotic
        nuc = _draw_nucleus(rng, cfg, median_d_px, mitotic)
        contact = bool(canvas.nuclei) and rng.random() < p_contact
        if contact:
            other, oy, ox = canvas.nuclei[int(rng.integers(len(canvas.nuclei)))]
            phi = rng.uniform(0, 2 * math.pi)
            dist = 0.97 * (other.radius_at(phi) + nuc.radius_at(phi + math.pi))
            cy, cx = oy + dist * math.sin(phi), ox + dist * math.cos(phi)
        else:
            m = 0.5 * nuc.radius_px
            cy, cx = rng.uniform(-m, h + m), rng.uniform(-m, w + m)
        if not canvas.try_place(nuc, cy, cx, contact) or not mitotic or rng.random() < 0.5:
            continue
        # telophase doublet: a sister on the far side along the long axis
        sister = _Nucleus(nuc.a_px, nuc.b_px, nuc.angle, *_contour(rng, cfg.irregularity),
                          nuc.brightness * rng.uniform(0.85, 1.15), nuc.texture)
        dist = rng.uniform(2.2, 3.5) * nuc.a_px
        canvas.try_place(sister, cy + dist * math.sin(nuc.angle), cx + dist * math.cos(nuc.angle), False)
    return canvas, [n for n, _, _ in canvas.nuclei]


def _clean_labels(labels: np.ndarray, nuclei: list[_Nucleus]) -> tuple[np.ndarray, list[_Nucleus]]:
    """Keep each label's largest 4-connected piece, drop tiny edge fragments, renumber 1..N."""
    out = np.zeros_like(labels)
    kept: list[_Nucleus] = []
    for k, sl in enumerate(ndimage.find_objects(labels), start=1):
        if sl is None:
            continue
        own = labels[sl] == k
        pieces, n = ndimage.label(own)
        if n > 1:
            sizes = ndimage.sum_labels(own, pieces, index=np.arange(1, n + 1))
            own = pieces == (1 + int(np.argmax(sizes)))
        if own.sum() < 8:
            continue
        kept.append(nuclei[k - 1])
        out[sl][own] = len(kept)
    return out, kept


def _smooth(img: np.ndarray, sigma_px: float) -> np.ndarray:
    """Wide Gaussian blur, done on a grid 4x coarser when the blur allows it (the haze: cheap and smooth)."""
    f = 4 if sigma_px >= 8 else 1
    if f == 1:
        return ndimage.gaussian_filter(img, sigma_px, mode="reflect", truncate=3.0)
    h, w = img.shape
    ph, pw = -h % f, -w % f
    coarse = np.pad(img, ((0, ph), (0, pw)), mode="edge").reshape((h + ph) // f, f, (w + pw) // f, f).mean((1, 3))
    coarse = ndimage.gaussian_filter(coarse, sigma_px / f, mode="reflect", truncate=3.0)
    return ndimage.zoom(coarse, f, order=1, grid_mode=True, mode="nearest")[:h, :w]


def chromatin_texture(rng: np.random.Generator, shape: tuple[int, int], pixel_size_um: float,
                      period_um: Range, exponent: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian texture whose power density is ∝ f^-``exponent`` for spatial frequencies f
    between 1/``period_um[1]`` and 1/``period_um[0]`` cycles/µm and zero outside (band-limited chromatin).

    White complex noise is filtered in the Fourier domain on a grid padded by the longest period (so the texture
    is not periodic over the field); the real part is returned. A band that the grid cannot hold (shorter than
    two pixels or longer than the padded grid) is refused.
    """
    lo_um, hi_um = period_um
    if lo_um < 2 * pixel_size_um:
        raise ValueError(f"chromatin_period_um={period_um}: the shortest period must be at least two pixels "
                         f"({2 * pixel_size_um:g} µm at {pixel_size_um:g} µm/px)")
    h, w = shape
    pad = int(math.ceil(hi_um / pixel_size_um))
    ph, pw = sp_fft.next_fast_len(h + pad), sp_fft.next_fast_len(w + pad)
    fy = sp_fft.fftfreq(ph, pixel_size_um)
    fx = sp_fft.fftfreq(pw, pixel_size_um)
    f = np.hypot(fy[:, None], fx[None, :])
    band = (f >= 1.0 / hi_um) & (f <= 1.0 / lo_um)
    if not band.any():
        raise ValueError(f"chromatin_period_um={period_um} holds no frequency of a {ph}×{pw} grid")
    gain = np.zeros(f.shape)
    gain[band] = f[band] ** (-0.5 * exponent)
    return unit_std(filtered_white_noise(rng, gain).real[:h, :w])


def _out_of_focus(rng, cfg: FluorescencePhantomConfig, shape: tuple[int, int], scale: float) -> np.ndarray:
    """Unlabelled nuclei of other planes: each a filled ellipse blurred by its own defocus σ (µm)."""
    h, w = shape
    out = np.zeros(shape, np.float32)
    median_d_px = float(np.mean(cfg.diameter_um)) / cfg.pixel_size_um
    target_px = rng.uniform(*cfg.out_of_focus_cover) * h * w
    area = 0.0
    while area < target_px:
        nuc = _draw_nucleus(rng, cfg, median_d_px, False)
        got = nuc.mask(rng.uniform(0, h), rng.uniform(0, w), shape)
        sigma_px = rng.uniform(*cfg.out_of_focus_blur_um) / cfg.pixel_size_um
        bright = rng.uniform(*cfg.out_of_focus_brightness) * scale
        area += math.pi * nuc.a_px * nuc.b_px
        if got is None:
            continue
        sl, inside, _ = got
        m = int(math.ceil(3 * sigma_px))  # blur the disc in a box with room for its σ
        y0, y1 = max(sl[0].start - m, 0), min(sl[0].stop + m, h)
        x0, x1 = max(sl[1].start - m, 0), min(sl[1].stop + m, w)
        box = np.zeros((y1 - y0, x1 - x0), np.float32)
        box[sl[0].start - y0:sl[0].stop - y0, sl[1].start - x0:sl[1].stop - x0] = inside * bright
        out[y0:y1, x0:x1] += ndimage.gaussian_filter(box, sigma_px, mode="constant", truncate=3.0)
    return out


def _realism(rng, cfg: FluorescencePhantomConfig, obj: np.ndarray, inside: np.ndarray, scale: float) -> np.ndarray:
    """The optional terms on the in-focus object: chromatin (multiplicative), PSF wing, out-of-focus nuclei."""
    h, w = obj.shape
    amp = rng.uniform(*cfg.chromatin_amplitude)
    if amp > 0:
        tex = chromatin_texture(rng, (h, w), cfg.pixel_size_um, cfg.chromatin_period_um, cfg.chromatin_exponent)
        obj = np.where(inside, obj * np.clip(1.0 + amp * tex, 0.2, None), 0.0).astype(np.float32)
    wing = rng.uniform(*cfg.psf_wing)
    if wing > 0:
        spread = ndimage.gaussian_filter(obj, cfg.psf_wing_um / cfg.pixel_size_um, mode="reflect", truncate=4.0)
        obj = ((1.0 - wing) * obj + wing * spread).astype(np.float32)
    if cfg.out_of_focus_cover[1] > 0:
        obj = obj + _out_of_focus(rng, cfg, (h, w), scale)
    return obj


def camera_reference(image: np.ndarray, photons_at_max: float, read_noise_e: float = 0.0, *,
                     seed: int = 0) -> np.ndarray:
    """What a camera records of ``image`` (≥ 0, its maximum = ``photons_at_max`` expected photo-electrons):
    Poisson + Gaussian read noise (``read_noise_e`` electrons; :func:`~napari_dmicro.optics.detector.sample_counts`,
    the forward models' noise rule), returned in the image's units (counts / ``photons_at_max`` · max).

    This is the noisy "ground truth" of a measured image such as DSB2018 (a camera image, not the specimen): a
    perfect reconstruction of ``image`` scores against it with PSNR ≈ 10·log10(range² / noise variance). The
    generator's fields stay noise free; benchmarks score against the clean field.
    """
    import torch

    from ..optics.detector import sample_counts

    if photons_at_max <= 0 or read_noise_e < 0:
        raise ValueError(f"photons_at_max={photons_at_max} must be > 0 and read_noise_e={read_noise_e} ≥ 0")
    x = np.asarray(image, np.float64)
    peak = float(x.max())
    if peak <= 0:
        raise ValueError("the image is all zero: nothing for the camera to record")
    expected = torch.from_numpy(x / peak * photons_at_max)
    gen = torch.Generator().manual_seed(int(seed))
    counts = sample_counts(expected, "exact", read_noise_e, gen).numpy()
    return (counts * (peak / photons_at_max)).astype(np.float32)


def _render(rng, cfg: FluorescencePhantomConfig, labels: np.ndarray, rel: np.ndarray,
            nuclei: list[_Nucleus], extra: np.random.Generator | None = None) -> np.ndarray:
    h, w = labels.shape
    bright = np.array([0.0] + [n.brightness for n in nuclei], np.float32)
    tex_amp = np.array([0.0] + [n.texture for n in nuclei], np.float32)
    texture, _ = _texture_pair(rng, (h, w), cfg.texture_um / cfg.pixel_size_um)
    inside = labels > 0
    obj = bright[labels] * (1.0 - cfg.dome * np.minimum(rel, 1.0) ** 2)
    obj *= np.clip(1.0 + tex_amp[labels] * texture, 0.2, None)
    obj[~inside] = 0.0
    scale = float(np.median(bright[1:])) if len(nuclei) else 1.0
    if extra is not None:
        obj = _realism(extra, cfg, obj, inside, scale)
    haze = _smooth(obj, cfg.haze_um / cfg.pixel_size_um)
    peak = float(haze.max())
    haze = haze / peak if peak > 0 else haze
    illum = 1.0 + cfg.illumination_variation * _slow_field(rng, (h, w), 0.5 * max(h, w))
    background = rng.uniform(*cfg.background) * scale
    img = illum * (obj + rng.uniform(*cfg.haze) * scale * haze + background)
    img = ndimage.gaussian_filter(img, rng.uniform(*cfg.blur_um) / cfg.pixel_size_um, mode="reflect", truncate=3.5)
    img = np.clip(img, 0.0, None)
    return (img / max(float(img.max()), 1e-12)).astype(np.float32)


def make_fluorescence_field(seed: int, index: int = 0, *, config: FluorescencePhantomConfig | None = None,
                            style: str | None = None, size_px=None, pixel_size_um: float | None = None
                            ) -> FluorescenceField:
    """Field ``index`` of the stream ``seed``: the style's (or ``config``'s) nuclei at ``pixel_size_um``.

    ``style`` names :data:`FLUO_STYLES` ("mixed" when neither it nor ``config`` is given); ``size_px`` (N or
    (rows, cols)) and ``pixel_size_um`` override the configuration's. A 512² field takes ~0.1 s.
    """
    if config is not None and style is not None:
        raise ValueError("give either config or style, not both")
    overrides = {}
    if size_px is not None:
        overrides["size_px"] = (size_px, size_px) if isinstance(size_px, (int, np.integer)) else tuple(size_px)
    if pixel_size_um is not None:
        overrides["pixel_size_um"] = pixel_size_um
    if config is None:
        style = style or "mixed"
        cfg = FluorescencePhantomConfig.style(style, **overrides)
    else:
        cfg = config.model_validate({**config.model_dump(), **overrides})
    rng = np.random.default_rng(field_seed(seed, index))
    canvas, nuclei = _populate(rng, cfg)
    labels, nuclei = _clean_labels(canvas.labels, nuclei)
    # the realism terms draw from their own stream: the default fields (and their draws) stay as they were
    extra = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 1])) if cfg.realism else None
    image = _render(rng, cfg, labels, canvas.rel, nuclei, extra)
    return FluorescenceField(image, labels, cfg.pixel_size_um, int(seed), int(index), style)


def touching_labels(labels: np.ndarray) -> np.ndarray:
    """Ids of labels that share a 4-neighbour border with another label (sorted)."""
    ids = []
    for a, b in ((labels[:-1, :], labels[1:, :]), (labels[:, :-1], labels[:, 1:])):
        s = (a > 0) & (b > 0) & (a != b)
        ids += [a[s], b[s]]
    return np.unique(np.concatenate(ids))


def nuclei_statistics(image: np.ndarray, labels: np.ndarray, *, field_px: int = 256,
                      bins: np.ndarray | None = None) -> dict:
    """Statistics compared with measured nuclei (docs/phantoms.md): areas (px), count per ``field_px``² field,
    fraction of nuclei touching another, covered fraction, and the histogram of the image normalised to its
    99.9th percentile (``bins``: edges, default 0..1.5 in 60 bins; densities)."""
    image = np.asarray(image, np.float64)
    labels = np.asarray(labels)
    ids = np.unique(labels[labels > 0])
    areas = ndimage.sum_labels(np.ones(labels.shape), labels, index=ids) if ids.size else np.zeros(0)
    ref = float(np.percentile(image, 99.9))
    bins = np.linspace(0.0, 1.5, 61) if bins is None else bins
    hist, _ = np.histogram(np.clip(image / ref, bins[0], bins[-1]), bins=bins, density=True)
    fg = labels > 0
    return {
        "n_nuclei": int(ids.size),
        "areas_px": areas,
        "count_per_field": ids.size * field_px * field_px / labels.size,
        "touching_fraction": touching_labels(labels).size / ids.size if ids.size else 0.0,
        "cover_fraction": float(fg.mean()),
        "nucleus_to_background": float(image[fg].mean() / max(image[~fg].mean(), 1e-12)) if fg.any() else 0.0,
        "hist_bins": bins,
        "hist_density": hist,
    }


def make_fluorescence_fields(count: int, seed: int, **kwargs):
    """Fields ``0..count-1`` of the stream ``seed`` (an iterator; see :func:`make_fluorescence_field`)."""
    for k in range(count):
        yield make_fluorescence_field(seed, k, **kwargs)


__all__ = ["FLUO_EMISSION_WAVELENGTH_UM", "FLUO_PIXEL_SIZE_UM", "FLUO_STYLES", "HARD", "FluorescenceField",
           "FluorescencePhantomConfig", "camera_reference", "chromatin_texture", "make_fluorescence_field",
           "make_fluorescence_fields", "nuclei_statistics", "touching_labels"]
