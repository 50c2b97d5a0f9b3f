"""VGG19 ``features`` (torchvision's layout and key names), truncated after conv5_4: the network the
perceptual loss compares feature maps with. Weights come from a file (:mod:`.vgg_weights`) or the
seeded substitute (:mod:`.perceptual`)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "VGG19_CONV_INDICES", "VGG19_LAYER_NAMES", "VGG19Features"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# torchvision's VGG19 ("E") `features`: numbers are 3x3 convs (each followed by a ReLU), "M" a 2x2 max pool.
_VGG19_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M")
_LAST_INDEX = 34  # conv5_4; everything after it (ReLU, pool, classifier) is never needed


def _vgg19_layout() -> list[tuple[str, int, int]]:
    """[(kind, in_ch, out_ch)] for features.0 .. features.36 in torchvision order."""
    layout, c_in = [], 3
    for item in _VGG19_CFG:
        if item == "M":
            layout.append(("pool", c_in, c_in))
        else:
            layout.append(("conv", c_in, int(item)))
            layout.append(("relu", int(item), int(item)))
            c_in = int(item)
    return layout


_LAYOUT = _vgg19_layout()[: _LAST_INDEX + 1]
VGG19_CONV_INDICES: tuple[int, ...] = tuple(i for i, (kind, _, _) in enumerate(_LAYOUT) if kind == "conv")


def _layer_names() -> dict[int, str]:
    names, block, conv_in_block = {}, 1, 0
    for i, (kind, _, _) in enumerate(_LAYOUT):
        if kind == "conv":
            conv_in_block += 1
            names[i] = f"conv{block}_{conv_in_block}"
        elif kind == "relu":
            names[i] = f"relu{block}_{conv_in_block}"
        else:
            names[i] = f"pool{block}"
            block, conv_in_block = block + 1, 0
    return names


VGG19_LAYER_NAMES: dict[int, str] = _layer_names()
_EXPECTED_SHAPES: dict[str, tuple[int, ...]] = {}
for _i, (_kind, _cin, _cout) in enumerate(_LAYOUT):
    if _kind == "conv":
        _EXPECTED_SHAPES[f"features.{_i}.weight"] = (_cout, _cin, 3, 3)
        _EXPECTED_SHAPES[f"features.{_i}.bias"] = (_cout,)



class VGG19Features(nn.Module):
    """torchvision-compatible VGG19 `features` layout (so a user's converted state dict loads with keys
    ``features.N.weight/bias``), truncated after index 34 (conv5_4) - or earlier, after
    ``max(layer_ids)``, when only shallower layers are requested (cheaper).

    ``forward(x)`` takes (B, 3, H, W) and returns the feature maps at ``layer_ids`` in the order given.
    At conv indices these are pre-ReLU (the ReLUs are not in-place, so returned maps are never
    overwritten). Channels and strides: conv1_2 64 @1, conv2_2 128 @2, conv3_4 256 @4,
    conv4_4 512 @8, conv5_4 512 @16 (pools floor odd sizes, as torchvision).
    """

    def __init__(self, layer_ids: Sequence[int] = (2, 7, 16, 25, 34)):
        super().__init__()
        ids = tuple(int(i) for i in layer_ids)
        if not ids:
            raise ValueError("layer_ids must name at least one layer")
        bad = [i for i in ids if not 0 <= i <= _LAST_INDEX]
        if bad:
            raise ValueError(f"layer_ids must lie in 0..{_LAST_INDEX} (conv5_4); got {bad}")
        if len(set(ids)) != len(ids):
            raise ValueError(f"layer_ids contain duplicates: {ids}")
        self.layer_ids = ids
        self.last_index = max(ids)
        modules: list[nn.Module] = []
        for kind, c_in, c_out in _LAYOUT[: self.last_index + 1]:
            if kind == "conv":
                modules.append(nn.Conv2d(c_in, c_out, 3, padding=1))
            elif kind == "relu":
                modules.append(nn.ReLU(inplace=False))
            else:
                modules.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*modules)
        self.layer_names = tuple(VGG19_LAYER_NAMES[i] for i in ids)
        self.out_channels = tuple(_LAYOUT[i][2] for i in ids)
        self.strides = tuple(2 ** sum(1 for k, _, _ in _LAYOUT[:i] if k == "pool") for i in ids)

    def forward(self, x: Tensor) -> list[Tensor]:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGG19Features expects (B, 3, H, W); got {tuple(x.shape)}")
        wanted = {i: k for k, i in enumerate(self.layer_ids)}
        out: list[Tensor | None] = [None] * len(self.layer_ids)
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in wanted:
                out[wanted[i]] = x
        return out  # type: ignore[return-value]
