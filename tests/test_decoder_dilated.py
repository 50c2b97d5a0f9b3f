"""The dilated decoder: its receptive field covers a whole cell and is what it states."""

from __future__ import annotations

import pytest
import torch

from napari_dmicro.decoders import build_decoder, decoder_config


def _empirical_receptive_field_px(model, side: int, upscale: int) -> tuple[int, int]:
    """Rows and columns of camera pixels that the centre output pixel depends on (nonzero gradient)."""
    x = torch.rand(1, 1, side, side, requires_grad=True)
    c = side // 2
    # the centre of a camera pixel: the ±2 px full-resolution refinement stays inside that camera pixel
    y = model(x)[0, 0, c * upscale + upscale // 2, c * upscale + upscale // 2]
    (grad,) = torch.autograd.grad(y, x)
    used = grad[0, 0].abs() > 0
    rows = torch.nonzero(used.any(1)).flatten()
    cols = torch.nonzero(used.any(0)).flatten()
    return int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)


@pytest.mark.parametrize("name,upscale", [("conv-dilated-tiny", 8), ("conv-dilated", 8), ("conv-dilated-tiny", 16)])
def test_receptive_field_measured_by_gradients_equals_the_stated_one(name, upscale):
    config = decoder_config(name, upscale)
    torch.manual_seed(0)
    model = build_decoder(config).double() if name.endswith("tiny") else build_decoder(config)
    stated = config.receptive_field_camera_px()
    side = stated + 10  # the field fits inside the input: no border clips it
    x_dtype = next(model.parameters()).dtype
    torch.set_default_dtype(x_dtype)
    try:
        measured = _empirical_receptive_field_px(model, side, upscale)
    finally:
        torch.set_default_dtype(torch.float32)
    assert measured == (stated, stated)
    assert model.receptive_field_camera_px == stated


def test_the_default_dilated_decoder_sees_a_whole_cell_at_x64():
    config = decoder_config("conv-dilated", 8)
    camera_pixel_um = 8 * 0.3164
    assert config.receptive_field_camera_px() * camera_pixel_um >= 20.0  # a whole cell (≥ 20 µm)
    assert config.receptive_field_camera_px() == 63


def test_dilated_decoder_output_shape_and_rejects_bad_dilations():
    model = build_decoder(decoder_config("conv-dilated-tiny", 8))
    assert model(torch.rand(2, 1, 13, 9)).shape == (2, 1, 104, 72)
    with pytest.raises(ValueError, match="dilations"):
        decoder_config("conv-dilated-tiny", 8, dilations=(1, 0))
