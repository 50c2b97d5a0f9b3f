"""DMD illumination patterns: learnable logits, sharpness schedule, binary deployment, equal dose.

A pattern set is T logits W (T, P, P) over one period of P = d·k specimen pixels. Its transmission is
soft in training, sigmoid(m·W) with a sharpness m that only increases, and binary at deployment and
evaluation, (W > 0). Every set is delivered with an exposure factor e = T·0.5 / Σ_t mean(H_t), so the
total excitation energy Σ_t mean(e·H_t) is T·0.5 for every set (learned, random, Hadamard, uniform):
comparisons are at equal dose.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .config import REFERENCE_DUTY, PatternConfig

#: Magnitude of the initial logits (±1: the sign is the binary pattern).
INIT_LOGIT = 1.0


class SharpnessSchedule:
    """Sharpness m of the soft patterns over training steps: geometric from ``start`` to ``end`` over
    ``steps`` steps, then ``end``. Never decreases (a decreasing schedule is refused: the authors' paper
    and code disagreed on resetting m, O4)."""

    def __init__(self, start: float = 1.0, end: float = 32.0, steps: int = 1000):
        if not (start > 0 and end > 0):
            raise ValueError(f"sharpness must be positive, got start={start}, end={end}")
        if end < start:
            raise ValueError(f"the sharpness schedule decreases ({start} → {end}); the patterns must only "
                             "become sharper during training: give end ≥ start")
        if steps < 1:
            raise ValueError(f"steps={steps}: a schedule needs at least one step")
        self.start, self.end, self.steps = float(start), float(end), int(steps)

    def value(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step={step} is negative")
        fraction = min(step, self.steps) / self.steps
        return self.start * (self.end / self.start) ** fraction

    def apply(self, patterns: IlluminationPatterns, step: int) -> float:
        """Set the sharpness of ``patterns`` (or an encoder holding them) for ``step``; returns it."""
        value = self.value(step)
        patterns.set_sharpness(value)
        return value


def _sylvester(order: int) -> np.ndarray:
    h = np.ones((1, 1), dtype=np.int8)
    while h.shape[0] < order:
        h = np.block([[h, h], [h, -h]])
    return h


def hadamard_patterns(period_px: int, n_patterns: int) -> np.ndarray:
    """T = ``n_patterns`` rows of the Sylvester Hadamard matrix of order P², ±1 → {1, 0}, each reshaped
    P × P (row-major).

    Row a·P + b of H_{P²} = H_P ⊗ H_P is the outer product of rows a and b of H_P. Rows are taken in 2-D
    sequency order: by the number of sign changes down the columns plus along the rows of the P × P
    pattern, ties by the larger of the two, then by row index — so row 0 (all mirrors on) comes first,
    then the coarsest patterns. All P² rows together are an invertible set."""
    p = period_px
    if p & (p - 1):
        raise ValueError(f"Hadamard patterns need a period that is a power of 2, got {p} px")
    if n_patterns > p * p:
        raise ValueError(f"a Hadamard set of period {p} has only {p * p} patterns, asked for {n_patterns}")
    h = _sylvester(p)
    changes = (np.diff(h, axis=1) != 0).sum(axis=1)
    order = sorted(range(p * p), key=lambda i: (changes[i // p] + changes[i % p],
                                                max(changes[i // p], changes[i % p]), i))
    rows = [np.outer(h[i // p], h[i % p]) for i in order[:n_patterns]]
    return (np.stack(rows) > 0).astype(np.float32)


def initial_binary(config: PatternConfig, period_px: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """The binary {0, 1} patterns (T, P, P) a pattern set starts from."""
    t, p = config.n_patterns, period_px
    if config.init == "random":
        return torch.bernoulli(torch.full((t, p, p), 0.5), generator=generator)
    if config.init == "hadamard":
        return torch.from_numpy(hadamard_patterns(p, t))
    if config.init == "uniform":
        return torch.ones(t, p, p)
    raise ValueError(f"unknown pattern init {config.init!r}; use 'random', 'hadamard' or 'uniform'")


class IlluminationPatterns(nn.Module):
    """T periodic DMD patterns with their logits, sharpness and equal-dose exposure."""

    def __init__(self, config: PatternConfig, period_px: int, generator: torch.Generator | None = None):
        super().__init__()
        self.config = config
        self.period_px = period_px
        logits = (2.0 * initial_binary(config, period_px, generator) - 1.0) * INIT_LOGIT
        if config.parametrisation == "fourier":
            # W such that real(fftshift(ifft2(W))) equals the spatial logits exactly
            logits = torch.fft.fft2(torch.fft.ifftshift(logits, dim=(-2, -1)))
        self.logits = nn.Parameter(logits, requires_grad=config.learnable)
        self.register_buffer("sharpness", torch.tensor(1.0))

    def set_sharpness(self, value: float) -> None:
        """Set m; refuses a decrease (the sharpness only increases during training)."""
        current = float(self.sharpness)
        if value < current * (1 - 1e-6):
            raise ValueError(f"sharpness {value:g} is below the current {current:g}; the patterns only become "
                             "sharper (start a new encoder to train from soft patterns again)")
        self.sharpness.fill_(float(value))

    def spatial_logits(self) -> torch.Tensor:
        """Logits on the DMD pixels (T, P, P), whatever the parametrisation."""
        if self.config.parametrisation == "fourier":
            return torch.fft.fftshift(torch.fft.ifft2(self.logits), dim=(-2, -1)).real
        return self.logits

    def transmission(self, binary: bool) -> torch.Tensor:
        """Mirror transmission (T, P, P): (W > 0) as exact 0/1 if ``binary``, else sigmoid(m·W)."""
        w = self.spatial_logits()
        if binary:
            return (w > 0).to(torch.float32)
        return torch.sigmoid(self.sharpness * w)

    @staticmethod
    def exposure(transmission: torch.Tensor) -> torch.Tensor:
        """e = T·0.5 / Σ_t mean(H_t): the factor that puts every pattern set at the reference dose."""
        t = transmission.shape[0]
        energy = transmission.mean(dim=(-2, -1)).sum()
        if float(energy.detach()) <= 0:
            raise ValueError("every pattern is dark (all mirrors off); no exposure can give them the reference "
                             "dose — re-initialise the patterns")
        return (REFERENCE_DUTY * t) / energy

    def forward(self, binary: bool) -> torch.Tensor:
        """Dose-normalised illumination e·H_t (T, P, P): exactly {0, e} when ``binary``."""
        h = self.transmission(binary)
        return h * self.exposure(h)


def tile_periodic(patterns: torch.Tensor, rows: int, cols: int) -> torch.Tensor:
    """One period of (T, P, P) patterns repeated over a (rows, cols) field from its first pixel: (T, rows, cols)."""
    p_rows, p_cols = patterns.shape[-2:]
    return patterns.repeat(1, -(-rows // p_rows), -(-cols // p_cols))[:, :rows, :cols]


def reference_energy(n_patterns: int) -> float:
    """Σ_t mean(e·H_t) of every normalised set: T·0.5."""
    return REFERENCE_DUTY * n_patterns


__all__ = ["IlluminationPatterns", "SharpnessSchedule", "hadamard_patterns", "initial_binary",
           "reference_energy", "tile_periodic"]
