"""napari layers made by napari-dmicro: their metadata, what they show, and their data.

Layers made by napari-dmicro carry ``metadata["napari_dmicro"]`` (see :mod:`napari_dmicro._reader`):
``kind`` (of the source), ``component`` (what the layer shows: ``amplitude``, ``phase``,
``measurement``, ``ssim``), ``pixel_size_um``, ``wavelength_um``, ``source`` and ``attrs``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..io.fields import ATTRS_KEY

TWO_PI = 2 * math.pi


def meta(layer) -> dict:
    """The layer's ``napari_dmicro`` metadata block (empty for foreign layers)."""
    block = getattr(layer, "metadata", {}).get(ATTRS_KEY) if layer is not None else None
    return dict(block or {})


def component(layer) -> str | None:
    m = meta(layer)
    return m.get("component") or m.get("kind")


def is_image(layer) -> bool:
    from napari.layers import Image

    return isinstance(layer, Image) and getattr(layer, "rgb", False) is False


def is_phase_layer(layer) -> bool:
    """A phase image: a field's phase, a phase map or a reconstruction."""
    return is_image(layer) and component(layer) == "phase"


def is_field_phase(layer) -> bool:
    return is_phase_layer(layer) and meta(layer).get("kind") == "field"


def is_measurement_layer(layer) -> bool:
    """A camera image (of either modality): a napari-dmicro measurement layer, or a plain image layer from another
    reader."""
    return is_image(layer) and (component(layer) == "measurement" or (not meta(layer) and layer.ndim == 2))


def layer_modality(layer) -> str:
    """``"fluorescence"`` for a fluorescence image, measurement, reconstruction or patterns layer, else ``"qpm"``."""
    m = meta(layer)
    fluo = m.get("kind") == "fluorescence" or (m.get("attrs") or {}).get("modality") == "fluorescence"
    return "fluorescence" if fluo else "qpm"


def is_fluorescence_image(layer) -> bool:
    """A 2-D fluorescence image: a fluorescence store's image, a reconstruction, or a plain 2-D image layer
    opened by another reader (its pixel size is then its napari scale)."""
    if not is_image(layer) or layer.ndim != 2:
        return False
    return component(layer) == "fluorescence" or not meta(layer)


def is_fluorescence_measurement(layer) -> bool:
    """A (T, h, w) measurement made through illumination patterns."""
    return is_image(layer) and component(layer) == "measurement" and layer_modality(layer) == "fluorescence"


def is_labels(layer) -> bool:
    from napari.layers import Labels

    return isinstance(layer, Labels)


def is_amplitude_layer(layer) -> bool:
    return is_image(layer) and component(layer) == "amplitude"


def layer_array(layer):
    """Full-resolution data of an image layer (level 0 of a multiscale layer); may be lazy."""
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data


def layer_numpy(layer, dtype=np.float32) -> np.ndarray:
    return np.asarray(layer_array(layer), dtype=dtype)


def _unrecorded(layer, key: str) -> bool:
    return key in ((meta(layer).get("attrs") or {}).get("defaults_used") or ())


def pixel_size_um(layer) -> float:
    """The layer's pixel size (µm): its metadata, else its napari scale. A layer whose file records none
    (``defaults_used``) or a foreign layer without a scale is refused: the size is never guessed."""
    value = meta(layer).get("pixel_size_um")
    if value and not _unrecorded(layer, "pixel_size_um"):
        return float(value)
    scale = float(layer.scale[-1]) if layer is not None else 1.0
    if scale != 1.0 and not value:
        return scale
    raise ValueError(f"layer {getattr(layer, 'name', layer)!r} records no pixel size: open it with the Load widget "
                     "and enter the pixel size (µm) — it is never guessed")


def image_pixel_size_um(layer) -> float:
    """A fluorescence image layer's pixel size (µm): its napari scale, which must agree with the size its file
    records (when it records one); a layer with neither (scale 1, nothing recorded) or with unequal y/x
    scales is refused — the size is never guessed."""
    name = getattr(layer, "name", layer)
    sy, sx = (float(v) for v in layer.scale[-2:])
    if abs(sy - sx) > 1e-6 * max(sy, sx):
        raise ValueError(f"layer {name!r} has a scale of {sy:g} × {sx:g} µm: pixels must be square")
    recorded = meta(layer).get("pixel_size_um")
    if recorded and not _unrecorded(layer, "pixel_size_um"):
        if sx != 1.0 and abs(sx - float(recorded)) > 1e-6 * float(recorded):
            raise ValueError(f"layer {name!r} is scaled to {sx:g} µm pixels but its file records {float(recorded):g} "
                             "µm; set the layer's scale back or fix the file's metadata")
        return float(recorded)
    if sx == 1.0:
        raise ValueError(f"layer {name!r} records no pixel size: set the layer's scale to its pixel size in µm "
                         "(e.g. viewer.layers[...].scale = (0.325, 0.325)) — it is never guessed")
    return sx


def wavelength_um(layer) -> float:
    """The layer's wavelength (µm) from its metadata; refused when the file recorded none."""
    value = meta(layer).get("wavelength_um")
    if value and not _unrecorded(layer, "wavelength_um"):
        return float(value)
    raise ValueError(f"layer {getattr(layer, 'name', layer)!r} records no wavelength: open it with the Load widget "
                     "and enter the wavelength (µm) — it is never guessed")


def sampling_note(layer) -> str:
    """"pixel 0.107 µm (entered), λ 0.633 µm (from the file)": the values in use and where they came from."""
    m = meta(layer)
    given = set((m.get("attrs") or {}).get("sampling_given") or ())
    if not m.get("pixel_size_um"):
        return "no recorded sampling"
    origin = {k: "entered" if k in given else "from the file" for k in ("pixel_size_um", "wavelength_um")}
    return (f"pixel {float(m['pixel_size_um']):g} µm ({origin['pixel_size_um']}), "
            f"λ {float(m['wavelength_um']):g} µm ({origin['wavelength_um']})")


def _stem(name: str, suffix: str) -> str:
    return name[: -len(suffix)].rstrip() if name.endswith(suffix) else name


def partner_amplitude(viewer, phase_layer):
    """The amplitude layer of the same field as ``phase_layer`` (same source and name), or None."""
    if not is_field_phase(phase_layer):
        return None
    m = meta(phase_layer)
    stem = _stem(phase_layer.name, "phase")
    shape = tuple(layer_array(phase_layer).shape)
    candidates = [lay for lay in viewer.layers if is_amplitude_layer(lay) and meta(lay).get("kind") == "field"
                  and meta(lay).get("source") == m.get("source") and tuple(layer_array(lay).shape) == shape]
    for lay in candidates:
        if _stem(lay.name, "amplitude") == stem:
            return lay
    return candidates[0] if len(candidates) == 1 else None


def field_from_layers(phase_layer, amplitude_layer=None) -> np.ndarray:
    """complex64 field amplitude·exp(i·phase); unit amplitude when ``amplitude_layer`` is None."""
    phase = layer_numpy(phase_layer)
    if phase.ndim not in (2, 3):
        raise ValueError(f"layer {phase_layer.name!r} is {phase.ndim}-D; a field is 2-D (rows, cols) or a stack "
                         "(planes, rows, cols)")
    if amplitude_layer is None:
        amp = np.ones_like(phase)
    else:
        amp = layer_numpy(amplitude_layer)
        if amp.shape != phase.shape:
            raise ValueError(f"amplitude {amplitude_layer.name!r} {amp.shape} and phase {phase_layer.name!r} "
                             f"{phase.shape} differ in shape")
    out = np.empty(phase.shape, np.complex64)
    out.real = amp * np.cos(phase)
    out.imag = amp * np.sin(phase)
    return out


def reference_phase(layer) -> np.ndarray:
    """A field's phase layer as background-referenced, unwrapped phase (rad; :mod:`napari_dmicro.phase_reference`:
    a 5 rad nucleus stays 5 rad, never −1.3), plane by plane for a stack; other phase layers as they are."""
    from ..phase_reference import referenced_phase_rad

    phase = layer_numpy(layer)
    if meta(layer).get("kind") == "field" and not meta(layer).get("phase_referenced"):  # the reader's are already
        if phase.ndim == 3:
            return np.stack([referenced_phase_rad(plane) for plane in phase])
        phase = referenced_phase_rad(phase)
    return phase


def json_safe(value: Any) -> Any:
    """Layer metadata that survives napari's writers and json (tuples → lists, numpy → python)."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist() if value.size <= 64 else f"array{value.shape}"
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def layer_meta(kind: str, component_: str, pixel_size: float, wavelength: float, source, attrs: dict) -> dict:
    return {ATTRS_KEY: {"kind": kind, "component": component_, "pixel_size_um": float(pixel_size),
                        "wavelength_um": float(wavelength), "source": source, "attrs": json_safe(attrs)}}


def add_or_replace_image(viewer, data, *, name: str, **kwargs):
    """Add an image layer, or update the data and properties of the layer of that name."""
    if name in viewer.layers:
        layer = viewer.layers[name]
        if is_image(layer) and tuple(np.shape(layer.data)) == tuple(np.shape(data)):
            layer.data = data
            for key in ("scale", "translate", "colormap", "contrast_limits", "opacity", "blending"):
                if key in kwargs:
                    setattr(layer, key, kwargs[key])
            if "metadata" in kwargs:
                layer.metadata = kwargs["metadata"]
            return layer
        viewer.layers.remove(layer)
    return viewer.add_image(data, name=name, **kwargs)


def show_phase_decorations(viewer, layer) -> None:
    """What every phase layer the widgets add shows: its colorbar (rad) and the viewer's scale bar (µm)."""
    try:
        layer.colorbar.visible = True
    except AttributeError:  # napari without layer colorbars
        pass
    scale_bar(viewer).visible = True


def scale_bar(viewer):
    """The viewer's scale bar overlay (``viewer.canvas.overlays`` since napari 0.9, ``viewer.scale_bar`` before);
    its unit follows the layers' (µm)."""
    overlays = getattr(getattr(viewer, "canvas", None), "overlays", None)
    return overlays.scale_bar if overlays is not None and hasattr(overlays, "scale_bar") else viewer.scale_bar


def phase_display(data) -> dict:
    """napari kwargs of a phase image (rad): the plugin's one colormap and range (see :mod:`napari_dmicro._reader`)."""
    from .._reader import PHASE_COLORMAP, phase_contrast_limits

    return {"colormap": PHASE_COLORMAP, "contrast_limits": phase_contrast_limits(data)}
