"""Stage-2 losses: VGG19 layout, safe weight loading, perceptual substitute, U-Net/SN discriminator, GAN and
the combined Stage2Loss. Small images and narrow discriminators keep this CPU-cheap."""

from __future__ import annotations

import hashlib
import inspect
import math
import pickle

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch.nn.utils import parametrize

from napari_dmicro.training import losses, perceptual
from napari_dmicro.training.gan import GANLoss, UNetDiscriminatorSN, discriminator_loss, generator_adversarial_loss
from napari_dmicro.training.losses import Stage2Loss
from napari_dmicro.training.perceptual import PerceptualLoss
from napari_dmicro.training.vgg19 import IMAGENET_MEAN, IMAGENET_STD, VGG19Features
from napari_dmicro.training.vgg_weights import VGGWeightsError, load_vgg19_weights

CONV_IDS = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


@pytest.fixture(scope="module")
def substitute() -> PerceptualLoss:
    return PerceptualLoss()  # seeded random VGG19, the full five layers


@pytest.fixture(scope="module")
def vgg_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(123)
    return {k: v.clone() for k, v in VGG19Features().state_dict().items()}


def _smooth(batch: int, size: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    low = torch.rand(batch, 1, size // 8, size // 8, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bicubic", align_corners=False).clamp(0, 1)


# ---------------------------------------------------------------- VGG19 layout


def test_vgg19_features_has_torchvision_key_layout_and_pre_relu_maps():
    net = VGG19Features()
    sd = net.state_dict()
    conv_ids = sorted({int(k.split(".")[1]) for k in sd})
    assert conv_ids == CONV_IDS  # 16 convs, nothing after conv5_4
    assert all(k.startswith("features.") for k in sd)
    assert sd["features.0.weight"].shape == (64, 3, 3, 3)
    assert sd["features.2.weight"].shape == (64, 64, 3, 3)
    assert sd["features.10.weight"].shape == (256, 128, 3, 3)
    assert sd["features.34.weight"].shape == (512, 512, 3, 3)
    assert sd["features.34.bias"].shape == (512,)
    assert len(net.features) == 35
    assert net.layer_names == ("conv1_2", "conv2_2", "conv3_4", "conv4_4", "conv5_4")

    with torch.no_grad():
        maps = net(torch.rand(2, 3, 64, 48))
    assert [m.shape[1] for m in maps] == [64, 128, 256, 512, 512]
    assert [tuple(m.shape[-2:]) for m in maps] == [(64 // s, 48 // s) for s in (1, 2, 4, 8, 16)]
    assert net.strides == (1, 2, 4, 8, 16)
    assert all(float(m.min()) < 0 for m in maps)  # taken before the ReLU


def test_vgg19_features_truncates_after_the_deepest_requested_layer():
    net = VGG19Features(layer_ids=(2, 7))
    assert len(net.features) == 8
    assert "features.10.weight" not in net.state_dict()
    with pytest.raises(ValueError, match="0..34"):
        VGG19Features(layer_ids=(2, 36))


# ---------------------------------------------------------------- weight file loading


def test_load_vgg19_weights_round_trips_both_key_styles(tmp_path, vgg_state):
    full = dict(vgg_state)
    full["classifier.6.bias"] = torch.zeros(10)  # a full torchvision state dict: classifier ignored
    save_file(full, tmp_path / "vgg19_full.safetensors")
    bare = {k.removeprefix("features."): v.half() for k, v in vgg_state.items()}  # features.state_dict() style, fp16
    save_file(bare, tmp_path / "vgg19_bare.safetensors")

    a = load_vgg19_weights(tmp_path / "vgg19_full.safetensors")
    b = load_vgg19_weights(tmp_path / "vgg19_bare.safetensors")
    assert set(a) == set(b) == set(vgg_state)
    for k, v in vgg_state.items():
        assert a[k].dtype == torch.float32 and torch.equal(a[k], v)
        torch.testing.assert_close(b[k], v.half().float())
    VGG19Features().load_state_dict(a, strict=True)


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda sd: sd.__setitem__("features.0.weight", torch.zeros(64, 1, 3, 3)),
         r"features\.0\.weight.*expected \(64, 3, 3, 3\)"),
        (lambda sd: sd.pop("features.34.bias"), r"missing 1 of 32.*features\.34\.bias"),
        (lambda sd: sd.__setitem__("features.1.running_mean", torch.zeros(64)), r"vgg19_bn"),
        (lambda sd: sd.__setitem__("features.4.weight", torch.zeros(3)), r"non-conv"),
    ],
)
def test_load_vgg19_weights_rejects_bad_contents_with_clear_messages(tmp_path, vgg_state, mutate, message):
    sd = dict(vgg_state)
    mutate(sd)
    save_file(sd, tmp_path / "bad.safetensors")
    with pytest.raises(VGGWeightsError, match=message):
        load_vgg19_weights(tmp_path / "bad.safetensors")


def test_load_vgg19_weights_rejects_missing_and_non_safetensors_files(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_vgg19_weights(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x05" * 64)
    with pytest.raises(VGGWeightsError, match="not a safetensors file"):
        load_vgg19_weights(junk)


class _Payload:
    """Unpickling this calls open(path, 'w'), i.e. creates a file: proof that something was executed."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_pickle_files_are_refused_without_being_executed(tmp_path):
    # the payload really does execute when unpickled (so the check below can fail)
    probe = tmp_path / "probe_was_created"
    pickle.loads(pickle.dumps(_Payload(probe))).close()
    assert probe.exists()

    sentinel = tmp_path / "sentinel_was_created"
    raw = pickle.dumps({"features.0.weight": _Payload(sentinel)})
    candidates = []
    for name in ("vgg19.pth", "vgg19.pkl", "vgg19.pt", "disguised.safetensors", "no_suffix"):
        (tmp_path / name).write_bytes(raw)
        candidates.append(tmp_path / name)
    zipped = tmp_path / "zip_disguised.safetensors"  # torch.save format: a zip archive with a pickle inside
    torch.save({"features.0.weight": _Payload(sentinel)}, zipped)
    candidates.append(zipped)

    for path in candidates:
        with pytest.raises(VGGWeightsError, match=r"safetensors\.torch\.save_file") as info:
            load_vgg19_weights(path)
        assert "torchvision" in str(info.value)
    with pytest.raises(VGGWeightsError):
        PerceptualLoss(weights_path=tmp_path / "vgg19.pth")
    assert not sentinel.exists()


# ---------------------------------------------------------------- perceptual loss


def test_substitute_perceptual_loss_is_zero_for_identical_positive_otherwise(substitute):
    x = _smooth(2, 64, seed=1)
    assert float(substitute(x, x.clone())) == 0.0
    assert float(substitute(x + 0.01 * torch.randn_like(x), x)) > 0.0
    assert float(substitute(_smooth(2, 64, seed=2), x)) > float(substitute(x + 0.01, x)) > 0.0


def test_perceptual_gradients_reach_pred_only_and_network_is_frozen(substitute):
    target = _smooth(2, 64, seed=3).requires_grad_(True)
    pred = _smooth(2, 64, seed=4).requires_grad_(True)
    substitute.train()  # must not un-freeze or leave eval mode
    substitute(pred, target).backward()
    assert pred.grad is not None and float(pred.grad.abs().sum()) > 0
    assert target.grad is None
    assert not substitute.vgg.training
    for p in substitute.vgg.parameters():
        assert not p.requires_grad and p.grad is None


def test_substitute_source_is_explicit_and_weights_are_seeded_prefixes(substitute):
    assert substitute.source.startswith("substitute")
    assert "NOT ImageNet" in substitute.source and "seed 0" in substitute.source
    shallow = PerceptualLoss(layer_ids=(2, 7), layer_weights=(0.1, 0.1))  # same seed: exact prefix
    full_sd, shallow_sd = substitute.vgg.state_dict(), shallow.vgg.state_dict()
    assert set(shallow_sd) == {f"features.{i}.{t}" for i in (0, 2, 5, 7) for t in ("weight", "bias")}
    for k, v in shallow_sd.items():
        assert torch.equal(v, full_sd[k])
    other = PerceptualLoss(layer_ids=(2,), layer_weights=(1.0,), substitute_seed=1)
    assert not torch.equal(other.vgg.state_dict()["features.2.weight"], full_sd["features.2.weight"])
    assert "seed 1" in other.source


def test_substitute_features_are_calibrated_not_degenerate(substitute):
    x = perceptual._calibration_batch(seed=77)  # same distribution as the calibration, other samples
    with torch.no_grad():
        maps = substitute.vgg(x.expand(-1, 3, -1, -1))
    for m in maps:
        assert 0.7 < float(m.std()) < 1.4  # unit scale at every depth (an uncalibrated net is off by 1e±10)
        assert 0.3 < float((m > 0).float().mean()) < 0.7  # ReLUs actually act


def test_perceptual_loss_with_weight_file_uses_imagenet_normalisation_and_names_the_file(tmp_path, vgg_state):
    path = tmp_path / "my_vgg19.safetensors"
    save_file(vgg_state, path)
    loss = PerceptualLoss(weights_path=path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert loss.source == f"imagenet-vgg19 (my_vgg19.safetensors, sha256 {digest[:12]})"
    assert "substitute" not in loss.source

    pred, target = _smooth(1, 32, seed=5), _smooth(1, 32, seed=6)
    ref = VGG19Features()
    ref.load_state_dict(vgg_state)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        fp, ft = ref((pred - mean) / std), ref((target - mean) / std)
    expected = sum(w * F.l1_loss(a, b) for w, a, b in zip((0.1, 0.1, 1, 1, 1), fp, ft, strict=True))
    torch.testing.assert_close(loss(pred, target).detach(), expected, rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- discriminator and GAN losses


def test_discriminator_is_spectrally_normalised_and_keeps_the_image_size():
    disc = UNetDiscriminatorSN(in_chans=1, num_feat=8)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    normalised = [m for m in convs if parametrize.is_parametrized(m, "weight")]
    assert len(convs) == 10 and len(normalised) == 8
    assert all(hasattr(m.parametrizations.weight, "original") for m in normalised)
    for shape in [(2, 1, 64, 64), (1, 1, 40, 56)]:
        assert disc(torch.rand(shape)).shape == (shape[0], 1, *shape[2:])
    assert UNetDiscriminatorSN(num_feat=8, skip_connection=False)(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)

    disc.train()
    with torch.no_grad():
        for _ in range(30):  # power iterations run in train mode
            disc(torch.rand(1, 1, 16, 16))
    for m in normalised:
        sigma = torch.linalg.matrix_norm(m.weight.detach().flatten(1), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)


def test_gan_loss_values_and_one_sided_label_smoothing():
    zeros = torch.zeros(2, 1, 4, 4)
    assert float(GANLoss()(zeros, True)) == pytest.approx(math.log(2))
    big = torch.full((1, 1, 2, 2), 20.0)
    assert float(GANLoss()(big, True)) < 1e-6
    smooth = GANLoss(label_smoothing=0.1)
    assert float(smooth(big, True)) < 1e-6  # generator target stays 1
    assert float(smooth(big, True, for_discriminator=True)) == pytest.approx(0.1 * 20.0, rel=1e-3)
    assert float(smooth(big, False, for_discriminator=True)) == pytest.approx(20.0, rel=1e-3)


def test_generator_and_discriminator_losses_route_gradients_correctly():
    torch.manual_seed(0)
    disc = UNetDiscriminatorSN(num_feat=8)
    fake = torch.rand(2, 1, 32, 32, requires_grad=True)
    g = generator_adversarial_loss(disc, fake)
    disc.eval()
    with torch.no_grad():
        expected = F.binary_cross_entropy_with_logits(disc(fake), torch.ones(2, 1, 32, 32))
    assert float(g.detach()) == pytest.approx(float(expected), rel=1e-3)
    g.backward()
    assert float(fake.grad.abs().sum()) > 0
    assert all(p.grad is None and p.requires_grad for p in disc.parameters())

    fake.grad = None
    disc.train()
    d = discriminator_loss(disc, _smooth(2, 32, seed=0), fake)
    d.backward()
    assert fake.grad is None  # detached inside
    assert all(p.grad is not None for p in disc.parameters())


def test_a_few_discriminator_steps_separate_smooth_real_from_noise_fakes():
    torch.manual_seed(0)
    disc = UNetDiscriminatorSN(num_feat=8)
    opt = torch.optim.Adam(disc.parameters(), lr=5e-4)
    held_real = _smooth(8, 32, seed=999)
    held_fake = torch.rand(8, 1, 32, 32, generator=torch.Generator().manual_seed(5))

    def held_out() -> float:
        with torch.no_grad():
            return float(discriminator_loss(disc, held_real, held_fake))

    before = held_out()
    assert before == pytest.approx(2 * math.log(2), abs=0.05)  # undecided at the start (small init)
    for step in range(30):
        loss = discriminator_loss(disc, _smooth(4, 32, seed=100 + step), torch.rand(4, 1, 32, 32))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert held_out() < 0.65 * before


# ---------------------------------------------------------------- Stage2Loss


def test_stage2_defaults_are_the_papers():
    params = inspect.signature(Stage2Loss).parameters
    assert (params["pixel_weight"].default, params["perceptual_weight"].default,
            params["adversarial_weight"].default) == (1.0, 1.0, 0.1)


def test_stage2_zero_weights_disable_terms_and_skip_building_the_perceptual_net(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("PerceptualLoss must not be built when its weight is 0")

    monkeypatch.setattr(losses, "PerceptualLoss", boom)
    pred, target = torch.rand(2, 1, 32, 32, requires_grad=True), torch.rand(2, 1, 32, 32)

    pixel_only = Stage2Loss(perceptual_weight=0.0, adversarial_weight=0.0)
    assert pixel_only.perceptual is None and pixel_only.discriminator is None
    assert pixel_only.perceptual_source == "disabled"
    total, terms = pixel_only(pred, target)
    assert set(terms) == {"pixel", "total"}
    assert float(total.detach()) == pytest.approx(float(F.l1_loss(pred, target).detach()))

    disc = UNetDiscriminatorSN(num_feat=8)
    with_gan = Stage2Loss(perceptual_weight=0.0, discriminator=disc)
    assert with_gan.discriminator is disc and with_gan.perceptual is None
    total, terms = with_gan(pred, target)
    assert set(terms) == {"pixel", "adversarial", "total"}
    assert terms["total"] == pytest.approx(terms["pixel"] + 0.1 * terms["adversarial"], rel=1e-5)
    total.backward()
    assert all(p.grad is None for p in disc.parameters())
    assert with_gan.discriminator_step_loss(target, pred).requires_grad

    gan_only = Stage2Loss(pixel_weight=0.0, perceptual_weight=0.0, discriminator=disc)
    assert set(gan_only(pred, target)[1]) == {"adversarial", "total"}

    with pytest.raises(ValueError):
        Stage2Loss(perceptual_weight=-1.0, adversarial_weight=0.0)


def test_stage2_perceptual_term_with_a_prebuilt_layer_subset():
    perceptual = PerceptualLoss(layer_ids=(2, 7), layer_weights=(0.1, 0.1))
    loss = Stage2Loss(perceptual_weight=0.5, adversarial_weight=0.0, perceptual=perceptual)
    assert loss.discriminator is None and loss.perceptual_source.startswith("substitute")
    pred, target = _smooth(2, 32, seed=8).requires_grad_(True), _smooth(2, 32, seed=9)
    total, terms = loss(pred, target)
    assert set(terms) == {"pixel", "perceptual", "total"}
    assert terms["perceptual"] == pytest.approx(float(perceptual(pred, target).detach()), rel=1e-5)
    assert terms["total"] == pytest.approx(terms["pixel"] + 0.5 * terms["perceptual"], rel=1e-5)
    total.backward()
    assert float(pred.grad.abs().sum()) > 0
