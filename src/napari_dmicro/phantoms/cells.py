"""Cell shapes: spread adherent cells, rounded mitotic cells, round suspension cells, debris, placement."""

from __future__ import annotations

import math

import numpy as np

from .config import TWO_PI, PhantomConfig
from .random_fields import _add_gaussian, _coarse_texture, _smoothstep, _Splatter, _texture_pair

_N_ANGLES = 256
_ANGLES = np.linspace(-math.pi, math.pi, _N_ANGLES, endpoint=False)


def _radius_table(
    rng: np.random.Generator, irregularity: float, elongation: float
) -> tuple[np.ndarray, float]:
    """Log-radius table over ``_ANGLES`` for a star-shaped contour with unit equivalent-area radius.

    Returns the radius table and the long-axis angle.
    """
    logr = np.zeros(_N_ANGLES)
    axis = rng.uniform(-math.pi, math.pi)
    logr += elongation * np.cos(2.0 * (_ANGLES - axis))
    for k in range(3, 7):
        logr += rng.normal(0.0, irregularity / k**1.2) * np.cos(k * _ANGLES - rng.uniform(0, TWO_PI))
    # lamellipodial protrusions: broad angular bumps of the log-radius
    for _ in range(int(rng.integers(1, 5))):
        width = rng.uniform(0.2, 0.6)
        d = np.angle(np.exp(1j * (_ANGLES - rng.uniform(-math.pi, math.pi))))
        logr += rng.uniform(0.5, 1.5) * irregularity * np.exp(-0.5 * (d / width) ** 2)
    r = np.exp(logr)
    r /= math.sqrt(np.mean(r**2))  # area = π·mean(r²) → unit equivalent radius
    return r, axis


def _lookup(table: np.ndarray, theta) -> np.ndarray:
    """Periodic linear interpolation of ``table`` (sampled at ``_ANGLES``) at angles ``theta`` (rad)."""
    t = (np.asarray(theta, np.float32) + np.float32(math.pi)) * np.float32(_N_ANGLES / TWO_PI)
    i0 = np.floor(t)
    frac = t - i0
    i0 = i0.astype(np.intp) % _N_ANGLES
    tab = table if len(table) == _N_ANGLES + 1 else np.append(table, table[0]).astype(np.float32)
    return tab[i0] * (1 - frac) + tab[i0 + 1] * frac


def _patch(shape, cy, cx, radius):
    y0, y1 = max(int(math.floor(cy - radius)), 0), min(int(math.ceil(cy + radius)) + 1, shape[0])
    x0, x1 = max(int(math.floor(cx - radius)), 0), min(int(math.ceil(cx + radius)) + 1, shape[1])
    if y0 >= y1 or x0 >= x1:
        return None
    dy = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy))[:, None]
    dx = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx))[None, :]
    return (slice(y0, y1), slice(x0, x1)), dy, dx


def _elliptic_radius(dy, dx, angle: float, aspect: float):
    """Radius (px) in the frame of an ellipse of axis ratio ``aspect`` whose long axis is at ``angle`` (rad)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.hypot((dx * c + dy * s) * math.sqrt(aspect), (-dx * s + dy * c) / math.sqrt(aspect))


class _Scene:
    """Accumulators shared by all objects of one field."""

    def __init__(self, cfg: PhantomConfig, rng: np.random.Generator):
        self.cfg = cfg
        self.rng = rng
        self.shape = cfg.size_px
        self.px = cfg.pixel_size_um
        self.phase = np.zeros(self.shape, np.float32)  # additive phase: nuclei, mitotic cells, debris
        # cytoplasm of overlapping spread cells is merged with a soft maximum (p-norm), so that a
        # confluent monolayer does not stack up: sum of cyto**q, combined as (sum)**(1/q) at the end
        self.cyto_q = np.zeros(self.shape, np.float32)
        self.q = float(cfg.overlap_exponent)
        # round suspension cells press against each other and push spread cells aside rather than stack on
        # them: merged with a maximum (with each other here, with the rest of the field at the end)
        self.round_phase = np.zeros(self.shape, np.float32)
        self.footprint = np.zeros(self.shape, np.float32)  # soft cell masks (for absorption)
        self.absorber = np.zeros(self.shape, np.float32)  # phase-independent absorber, per-cell level
        self.points = _Splatter(self.shape)  # granules and fibres, in phase·px² / phase·px units
        tex_sigma = cfg.texture_length_um / self.px
        self.tex_cyto, self.tex_nuc = _texture_pair(rng, self.shape, tex_sigma)
        self.tex_absorber = _coarse_texture(rng, self.shape, 3.0 / self.px)
        self.edge_px = cfg.edge_width_um / self.px
        self.point_sigma_px = cfg.granule_diameter_um / 2.3548 / self.px

    # --- spread (interphase) cell ------------------------------------------------------------------
    def spread_cell(self, cy: float, cx: float, diameter_px: float, peak_phase: float):
        cfg, rng = self.cfg, self.rng
        r_unit, axis = _radius_table(rng, cfg.cell_irregularity, rng.uniform(0.05, 0.45))
        r_tab = np.append(r_unit, r_unit[0]).astype(np.float32) * np.float32(diameter_px / 2.0)
        got = _patch(self.shape, cy, cx, float(r_tab.max()) + self.edge_px + 2)
        cyto = min(rng.uniform(*cfg.cytoplasm_phase_rad), 0.6 * peak_phase)
        lamella = rng.uniform(*cfg.lamella_fraction)
        power = rng.uniform(0.6, 1.2)
        absorber_level = np.float32(rng.uniform(0.3, 1.7))

        # nucleus geometry (cell-centred polar frame; offset towards a random side)
        dn = min(rng.uniform(*cfg.nucleus_diameter_um) / self.px, 0.6 * diameter_px, 1.4 * float(r_tab.min()))
        off_ang = rng.uniform(-math.pi, math.pi)
        r_at = float(_lookup(r_tab, off_ang))
        off = rng.uniform(0.0, max(0.0, min(0.2 * diameter_px, r_at - 0.65 * dn)))
        ny, nx = cy + off * math.sin(off_ang), cx + off * math.cos(off_ang)
        aspect = rng.uniform(1.0, 1.5)
        n_angle = axis + rng.normal(0.0, 0.3)
        na, nb = 0.5 * dn * math.sqrt(aspect), 0.5 * dn / math.sqrt(aspect)
        n_tab = np.ones(_N_ANGLES)
        for k in range(2, 5):
            n_tab += rng.normal(0.0, 0.04 / k) * np.cos(k * _ANGLES - rng.uniform(0, TWO_PI))
        n_tab = np.append(n_tab, n_tab[0]).astype(np.float32)
        cyto_at_nucleus = cyto * (lamella + (1 - lamella) * max(0.0, 1 - (off / r_at) ** 2) ** power)
        nucleus_height = max(peak_phase - cyto_at_nucleus, 0.25 * peak_phase)

        if got is not None:
            sl, dy, dx = got
            rho = np.hypot(dy, dx)
            r = _lookup(r_tab, np.arctan2(dy, dx))
            edge = _smoothstep((r - rho) / self.edge_px + 0.5)
            base = np.clip(1.0 - (rho / r) ** 2, 0.0, 1.0) ** np.float32(power)
            dome = lamella + (1.0 - lamella) * base
            tex = 1.0 + cfg.cytoplasm_texture * self.tex_cyto[sl]
            layer = cyto * dome * edge * np.maximum(tex, 0.2)
            self.cyto_q[sl] += layer * layer * layer if self.q == 3.0 else layer ** np.float32(self.q)
            self.footprint[sl] += edge
            self.absorber[sl] += edge * absorber_level

        # nucleus: rotated ellipse with slightly irregular contour, on its own (smaller) patch
        got_n = _patch(self.shape, ny, nx, max(na, nb) * float(n_tab.max()) + self.edge_px + 2)
        if got_n is not None:
            sl, ddy, ddx = got_n
            c, s = math.cos(n_angle), math.sin(n_angle)
            u = (ddx * c + ddy * s) / na
            v = (-ddx * s + ddy * c) / nb
            rho_n = np.hypot(u, v)
            bound = _lookup(n_tab, np.arctan2(v, u))
            edge_n = _smoothstep((bound - rho_n) * (nb / self.edge_px) + 0.5)  # ≥ edge width everywhere
            base_n = np.sqrt(np.clip(1.0 - (rho_n / bound) ** 2, 0.0, 1.0))
            tex_n = np.maximum(1.0 + cfg.nucleus_texture * self.tex_nuc[sl], 0.2)
            self.phase[sl] += nucleus_height * base_n * edge_n * tex_n

        # nucleoli
        for _ in range(int(rng.integers(cfg.nucleolus_count[0], cfg.nucleolus_count[1] + 1))):
            rr = 0.55 * math.sqrt(rng.uniform())
            aa = rng.uniform(-math.pi, math.pi)
            u, v = rr * math.cos(aa) * na, rr * math.sin(aa) * nb
            c, s = math.cos(n_angle), math.sin(n_angle)
            py, px_ = ny + u * s + v * c, nx + u * c - v * s
            sig = rng.uniform(*cfg.nucleolus_diameter_um) / 2.3548 / self.px
            elong = rng.uniform(1.0, 1.4)
            _add_gaussian(self.phase, py, px_, sig / math.sqrt(elong), sig * math.sqrt(elong),
                          rng.uniform(0, math.pi), rng.uniform(*cfg.nucleolus_phase_rad))

        area_um2 = math.pi * (0.5 * diameter_px * self.px) ** 2
        # granules: uniform in angle, denser towards the cell body
        n_gran = int(rng.poisson(cfg.granule_density_per_um2 * area_um2))
        if n_gran:
            th = rng.uniform(-math.pi, math.pi, n_gran)
            rn = 0.15 + 0.75 * rng.beta(1.6, 2.2, n_gran)
            rad = rn * _lookup(r_tab, th)
            amp = rng.uniform(*cfg.granule_phase_rad, n_gran) * (2 * math.pi * self.point_sigma_px**2)
            self.points.add(cy + rad * np.sin(th), cx + rad * np.cos(th), amp)
        # stress fibres: chords roughly along the long axis, clipped to 90 % of the contour
        n_fib = int(rng.integers(cfg.fibre_count[0], cfg.fibre_count[1] + 1))
        rmax = float(r_tab.max())
        t = np.arange(-rmax, rmax, 0.5)
        for _ in range(n_fib):
            ang = axis + rng.normal(0.0, 0.25)
            offset = rng.uniform(-0.6, 0.6) * diameter_px / 2
            ca, sa = math.cos(ang), math.sin(ang)
            yy = offset * ca + t * sa
            xx = -offset * sa + t * ca
            inside = np.hypot(yy, xx) < 0.9 * _lookup(r_tab, np.arctan2(yy, xx))
            if not inside.any():
                continue
            w = rng.uniform(*cfg.fibre_phase_rad) * 0.5 * math.sqrt(TWO_PI) * self.point_sigma_px
            self.points.add(cy + yy[inside], cx + xx[inside], w)

    # --- rounded mitotic cell ------------------------------------------------------------------------
    def mitotic_cell(self, cy: float, cx: float, diameter_px: float, peak_phase: float):
        cfg, rng = self.cfg, self.rng
        radius = 0.5 * diameter_px
        plate = rng.uniform() < 0.5
        plate_amp = rng.uniform(0.2, 0.5) if plate else 0.0
        height = peak_phase - 0.8 * plate_amp
        aspect = rng.uniform(1.0, 1.1)
        ang = rng.uniform(0, math.pi)
        absorber_level = np.float32(rng.uniform(0.3, 1.7))
        got = _patch(self.shape, cy, cx, radius * 1.05 + self.edge_px + 2)
        if got is not None:
            sl, dy, dx = got
            rho = _elliptic_radius(dy, dx, ang, aspect)
            edge = _smoothstep((radius - rho) / (1.5 * self.edge_px) + 0.5)  # steep sphere: softer rim
            base = np.sqrt(np.clip(1.0 - (rho / radius) ** 2, 0.0, 1.0))
            tex = np.maximum(1.0 + 0.5 * cfg.nucleus_texture * self.tex_nuc[sl], 0.2)
            self.phase[sl] += height * base * edge * tex
            self.footprint[sl] += edge
            self.absorber[sl] += edge * absorber_level
        if plate:  # condensed chromosomes (metaphase plate)
            _add_gaussian(self.phase, cy, cx, 0.6 / self.px, 0.3 * radius, rng.uniform(0, math.pi), plate_amp)

    # --- round suspension cell (HL60-like) ----------------------------------------------------------
    def round_cell(self, cy: float, cx: float, diameter_px: float, peak_phase: float):
        """A sphere of index contrast with a spherical nucleus: φ = P_c·sqrt(1 − ρ²/R²) + P_n·sqrt(1 − ρ_n²/R_n²).

        P_c + P_n = ``peak_phase`` (rad); the nucleus (``round_nucleus_*``) sits near the centre, so the peak is
        reached there; the rim is softened over 0.6 × ``edge_width_um``.
        """
        cfg, rng = self.cfg, self.rng
        radius = 0.5 * diameter_px
        aspect = rng.uniform(1.0, 1.12)
        ang = rng.uniform(0, math.pi)
        share = rng.uniform(*cfg.round_nucleus_phase_fraction)
        r_n = rng.uniform(*cfg.round_nucleus_diameter_fraction) * radius
        off = rng.uniform(0.0, 0.5) * max(radius - r_n, 0.0)
        off_ang = rng.uniform(-math.pi, math.pi)
        absorber_level = np.float32(rng.uniform(0.3, 1.7))
        got = _patch(self.shape, cy, cx, radius * 1.1 + self.edge_px + 2)
        if got is not None:
            sl, dy, dx = got
            rho = _elliptic_radius(dy, dx, ang, aspect)
            edge = _smoothstep((radius - rho) / (0.6 * self.edge_px) + 0.5)  # the steep rim of a sphere
            body = np.sqrt(np.clip(1.0 - (rho / radius) ** 2, 0.0, 1.0))
            layer = np.float32((1.0 - share) * peak_phase) * body
            if share > 0 and r_n > 0:
                rho_n = np.hypot(dy - off * math.sin(off_ang), dx - off * math.cos(off_ang)) / np.float32(r_n)
                tex = np.maximum(1.0 + cfg.nucleus_texture * self.tex_nuc[sl], 0.2)
                layer += np.float32(share * peak_phase) * np.sqrt(np.clip(1.0 - rho_n**2, 0.0, 1.0)) * tex
            layer *= edge
            np.maximum(self.round_phase[sl], layer, out=self.round_phase[sl])
            self.footprint[sl] += edge
            self.absorber[sl] += edge * absorber_level
        if share > 0:
            ny, nx = cy + off * math.sin(off_ang), cx + off * math.cos(off_ang)
            for _ in range(int(rng.integers(cfg.nucleolus_count[0], cfg.nucleolus_count[1] + 1))):
                rr, aa = 0.5 * r_n * math.sqrt(rng.uniform()), rng.uniform(-math.pi, math.pi)
                sig = rng.uniform(*cfg.nucleolus_diameter_um) / 2.3548 / self.px
                _add_gaussian(self.round_phase, ny + rr * math.sin(aa), nx + rr * math.cos(aa), sig, sig, 0.0,
                              rng.uniform(*cfg.nucleolus_phase_rad))

    def debris(self, cy: float, cx: float):
        cfg, rng = self.cfg, self.rng
        sig = rng.uniform(*cfg.debris_diameter_um) / 2.3548 / self.px
        e = rng.uniform(1.0, 1.6)
        _add_gaussian(self.phase, cy, cx, sig / math.sqrt(e), sig * math.sqrt(e), rng.uniform(0, math.pi),
                      rng.uniform(*cfg.debris_phase_rad))


def _place(rng: np.random.Generator, n: int, box: tuple[float, float, float, float], diam: np.ndarray,
           sep: float = 0.55, tries: int = 24) -> np.ndarray:
    """Random sequential placement with soft exclusion: centres at least ``sep·(d_i+d_j)/2`` apart when
    possible within ``tries`` attempts, otherwise the last attempt is kept (cells may overlap)."""
    y0, y1, x0, x1 = box
    centres = np.zeros((n, 2))
    for i in range(n):
        cand = np.column_stack([rng.uniform(y0, y1, tries), rng.uniform(x0, x1, tries)])
        if i:
            d = np.hypot(cand[:, None, 0] - centres[None, :i, 0], cand[:, None, 1] - centres[None, :i, 1])
            ok = np.all(d >= sep * 0.5 * (diam[i] + diam[None, :i]), axis=1)
            j = int(np.argmax(ok)) if ok.any() else tries - 1
        else:
            j = 0
        centres[i] = cand[j]
    return centres

