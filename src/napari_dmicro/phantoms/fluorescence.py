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

Same ``(seed, index, configuration)`` → the same field, bit for bit (``numpy.random.SeedSequence([seed,
index])``, as :func:`~napari_dmicro.phantoms.field_seed`). Training and evaluation use disjoint seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field, field_validator
from scipy import ndimage

from ..config import _Config, check_pixel_size_um
from .generate import field_seed
from .random_fields import _slow_field, _texture_pair

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
                     "mitotic_fraction", "mitotic_brightness", "blur_um", "background", "haze")
    @classmethod
    def _range(cls, v: Range) -> Range:
        if not 0 <= v[0] <= v[1]:
            raise ValueError(f"range {v} must satisfy 0 ≤ lo ≤ hi")
        return v

    @classmethod
    def style(cls, name: str, **overrides) -> FluorescencePhantomConfig:
        """A named density style (:data:`FLUO_STYLES`) with optional field overrides."""
        if name not in FLUO_STYLES:
            raise ValueError(f"style={name!r} is not one of {sorted(FLUO_STYLES)}")
        return cls(**{**FLUO_STYLES[name], **overrides})


#: named styles: sparse (isolated nuclei), confluent (crowded, many touching), mixed (sparse → confluent,
#: the default for training), dsb (the density of the DSB2018 img2d example, for the docs comparison)
FLUO_STYLES: dict[str, dict] = {
    "sparse": {"cover_fraction": (0.02, 0.08), "cluster_fraction": (0.0, 0.1)},
    "confluent": {"cover_fraction": (0.3, 0.5), "cluster_fraction": (0.3, 0.6)},
    "mixed": {},
    "dsb": {"cover_fraction": (0.16, 0.24), "cluster_fraction": (0.08, 0.2)},
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


def _render(rng, cfg: FluorescencePhantomConfig, labels: np.ndarray, rel: np.ndarray,
            nuclei: list[_Nucleus]) -> np.ndarray:
    h, w = labels.shape
    bright = np.array([0.0] + [n.brightness for n in nuclei], np.float32)
    tex_amp = np.array([0.0] + [n.texture for n in nuclei], np.float32)
    texture, _ = _texture_pair(rng, (h, w), cfg.texture_um / cfg.pixel_size_um)
    inside = labels > 0
    obj = bright[labels] * (1.0 - cfg.dome * np.minimum(rel, 1.0) ** 2)
    obj *= np.clip(1.0 + tex_amp[labels] * texture, 0.2, None)
    obj[~inside] = 0.0
    scale = float(np.median(bright[1:])) if len(nuclei) else 1.0
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
    image = _render(rng, cfg, labels, canvas.rel, nuclei)
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


__all__ = ["FLUO_EMISSION_WAVELENGTH_UM", "FLUO_PIXEL_SIZE_UM", "FLUO_STYLES", "FluorescenceField",
           "FluorescencePhantomConfig", "make_fluorescence_field", "make_fluorescence_fields", "nuclei_statistics",
           "touching_labels"]
