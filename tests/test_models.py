"""Architectures, noise injection semantics and config validation."""

from __future__ import annotations

import math

import pytest
import torch

import ratzoo
from ratzoo import ModelConfig, build_model, is_randomized, noise_control
from ratzoo.models import ARCHITECTURES
from ratzoo.noise import GaussianNoise

# Tiny widths: PreActResNet's base width, WRN's widen factor (1 = WRN-28-1).
TINY_WIDTH = {"preact_resnet18": 4, "wide_resnet28_10": 1}


def test_every_architecture_has_a_tiny_width() -> None:
    assert set(TINY_WIDTH) == set(ARCHITECTURES), "add a tiny width for the new architecture"


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
@pytest.mark.parametrize("noise_kind", ["none", "fixed", "learned"])
def test_shapes_and_finiteness(architecture: str, noise_kind: str) -> None:
    torch.manual_seed(0)
    sigma = 0.0 if noise_kind == "none" else 0.3
    model = build_model(architecture=architecture, width=TINY_WIDTH[architecture],
                        noise_kind=noise_kind, noise_sigma=sigma)
    x = torch.rand(3, 3, 32, 32)
    for mode in (model.train, model.eval):
        mode()
        out = model(x)
        assert out.shape == (3, 10)
        assert out.dtype == torch.float32
        assert torch.isfinite(out).all()
    out.sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


def test_width_scales_preact_resnet() -> None:
    small = build_model(width=2)
    big = build_model(width=4)
    n_small = sum(p.numel() for p in small.parameters())
    n_big = sum(p.numel() for p in big.parameters())
    # conv weights dominate and scale with width^2
    assert 3.5 < n_big / n_small < 4.1
    assert small.stem.conv.out_channels == 2


def test_wide_resnet_is_28_layers_deep() -> None:
    model = build_model(architecture="wide_resnet28_10", width=1)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    # stem conv + 12 blocks x 2 convs + final linear = 26 + fc; 1x1 shortcuts are not counted
    assert len(convs) == 25
    assert model.head.fc.in_features == 64


def test_num_classes() -> None:
    assert build_model(width=2, num_classes=7)(torch.rand(2, 3, 32, 32)).shape == (2, 7)


def test_normalization_inside_the_model() -> None:
    model = build_model(width=2).eval()
    x = torch.rand(2, 3, 32, 32)
    mean = torch.tensor(ratzoo.models.CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(ratzoo.models.CIFAR10_STD).view(1, 3, 1, 1)
    expected = model.head(model.stem.bn(model.stem.conv((x - mean) / std)))
    torch.testing.assert_close(model(x), expected, rtol=0, atol=1e-6)


# --------------------------------------------------------------------------- noise


def _noisy(kind: str = "fixed", layer: int = 1, sigma: float = 0.5) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(width=2, noise_kind=kind, noise_sigma=sigma, noise_layer=layer)


@pytest.mark.filterwarnings("ignore:RandomizedClassifier has BatchNorm layers in training mode")
@pytest.mark.parametrize("kind", ["fixed", "learned"])
@pytest.mark.parametrize("layer", [0, 1])
def test_noise_on_two_passes_differ_also_in_eval(kind: str, layer: int) -> None:
    model = _noisy(kind, layer)
    x = torch.rand(2, 3, 32, 32)
    assert is_randomized(model)
    for mode in (model.train, model.eval):
        mode()
        with torch.no_grad():
            a, b = model(x), model(x)
        assert not torch.equal(a, b), f"noise did not change the output in {mode.__name__}() mode"
    assert is_randomized(model), "eval() must not switch the noise off"


@pytest.mark.parametrize("layer", [0, 1])
def test_seed_repeats_exactly(layer: int) -> None:
    model = _noisy(layer=layer).eval()
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        with noise_control(model, seed=123):
            a1, a2 = model(x), model(x)
        with noise_control(model, seed=123):
            b1, b2 = model(x), model(x)
        with noise_control(model, seed=124):
            c1 = model(x)
    assert torch.equal(a1, b1) and torch.equal(a2, b2)
    assert not torch.equal(a1, a2), "successive draws of one generator must differ"
    assert not torch.equal(a1, c1), "another seed must give another draw"


def test_noise_off_is_deterministic_and_matches_clean_path() -> None:
    model = _noisy().eval()
    clean = build_model(width=2).eval()
    clean.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), noise_control(model, enabled=False):
        assert not is_randomized(model)
        a, b = model(x), model(x)
    assert torch.equal(a, b)
    assert torch.equal(a, clean(x))
    assert is_randomized(model), "noise_control must restore the switch on exit"


def test_noise_control_restores_state_on_error() -> None:
    model = _noisy()
    g = torch.Generator()
    with pytest.raises(RuntimeError, match="boom"):
        with noise_control(model, enabled=False, generator=g):
            raise RuntimeError("boom")
    assert model.noise.enabled is True and model.noise.generator is None


def test_noise_control_rejects_seed_and_generator() -> None:
    with pytest.raises(ValueError, match="either seed or generator"):
        with noise_control(_noisy(), seed=0, generator=torch.Generator()):
            pass


def test_deterministic_model_is_not_randomized() -> None:
    model = build_model(width=2).eval()
    assert model.noise is None and not is_randomized(model)
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("layer", [0, 1])
def test_noise_is_added_where_the_config_says(layer: int) -> None:
    """Layer 0 adds sigma * N(0, I) to the pixels, layer 1 to the stem's output."""
    sigma = 0.25
    model = _noisy(layer=layer, sigma=sigma).eval()
    x = torch.rand(2, 3, 32, 32)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad(), noise_control(model, generator=g):
        noisy = model(x)
    g = torch.Generator().manual_seed(7)
    with torch.no_grad(), noise_control(model, enabled=False):
        if layer == 0:
            eps = torch.randn(x.shape, generator=g)
            expected = model(x + sigma * eps)
        else:
            h = model.features(x)
            expected = model.head(h + sigma * torch.randn(h.shape, generator=g))
    torch.testing.assert_close(noisy, expected, rtol=0, atol=1e-5)
    assert model.noise.channels == (3 if layer == 0 else 2)


def test_noise_std_is_sigma() -> None:
    noise = GaussianNoise(4, 0.7)
    x = torch.zeros(64, 4, 16, 16)
    with noise_control(noise, seed=0):
        out = noise(x)
    assert abs(out.std().item() - 0.7) < 0.01
    assert abs(out.mean().item()) < 0.01


def test_lerat_sigma_gets_gradient_and_stays_positive() -> None:
    model = _noisy("learned", sigma=0.5)
    noise = model.noise
    assert isinstance(noise.log_sigma, torch.nn.Parameter)
    assert noise.sigma.shape == (2,)
    torch.testing.assert_close(noise.sigma, torch.full((2,), 0.5))
    assert any(p is noise.log_sigma for p in model.parameters())

    x = torch.rand(4, 3, 32, 32)
    with noise_control(model, seed=0):
        model(x).logsumexp(1).mean().backward()
    grad = noise.log_sigma.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0

    # Push sigma down as hard as plain SGD can: the exp parametrization keeps it > 0.
    opt = torch.optim.SGD([noise.log_sigma], lr=50.0)
    for _ in range(50):
        opt.zero_grad()
        noise.sigma.sum().backward()
        opt.step()
    assert (noise.sigma > 0).all()
    assert noise.min_sigma() > 0
    assert noise.min_sigma() < 0.5


def test_fixed_sigma_has_no_parameter() -> None:
    model = _noisy("fixed")
    assert not any("sigma" in name for name, _ in model.named_parameters())
    # and it is not in the state dict either (it lives in config.json)
    assert not any("sigma" in k for k in model.state_dict())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_generator_on_another_device_is_a_clear_error() -> None:
    model = _noisy().cuda().eval()
    x = torch.rand(2, 3, 32, 32, device="cuda")
    with pytest.raises(RuntimeError, match="generator lives on cpu"):
        with noise_control(model, generator=torch.Generator()):
            model(x)
    with noise_control(model, seed=3):  # seed= builds the generator on the model's device
        a = model(x)
    with noise_control(model, seed=3):
        assert torch.equal(a, model(x))


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(architecture="resnet50"), "unknown architecture 'resnet50'; known"),
        (dict(width=0), "width must be a positive integer"),
        (dict(width=2.5), "width must be a positive integer"),
        (dict(noise_kind="uniform"), "noise_kind must be one of"),
        (dict(noise_kind="fixed", noise_sigma=0.0), "noise_sigma must be > 0"),
        (dict(noise_kind="fixed", noise_sigma=-0.1), "noise_sigma must be > 0"),
        (dict(noise_kind="learned", noise_sigma=math.nan), "noise_sigma must be > 0"),
        (dict(noise_kind="fixed", noise_sigma=math.inf), "noise_sigma must be > 0"),
        (dict(noise_layer=2), "noise_layer must be 0"),
        (dict(std=(0.2, 0.0, 0.2)), "std > 0"),
        (dict(mean=(0.5, 0.5)), "mean and std must be 3 numbers"),
        (dict(dropout=1.0), "dropout must be in"),
    ],
)
def test_model_config_validation(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**overrides)


def test_model_config_dict_round_trip() -> None:
    cfg = ModelConfig(width=3, noise_kind="learned", noise_sigma=0.2, noise_layer=0)
    d = cfg.to_dict()
    assert isinstance(d["mean"], list)
    assert ModelConfig.from_dict(d) == cfg
    with pytest.raises(ValueError, match=r"unknown model config fields \['depth'\]"):
        ModelConfig.from_dict({**d, "depth": 18})


def test_gaussian_noise_validation() -> None:
    with pytest.raises(ValueError, match="'fixed' or 'learned'"):
        GaussianNoise(3, 0.5, kind="none")
    with pytest.raises(ValueError, match="positive number"):
        GaussianNoise(3, 0.0)


# --------------------------------------------------------------------------- RSE and PNI

# the presets' values (train/config.py), at a tiny width
DEFENSE_CONFIGS = {
    "rse": dict(noise_kind="rse", noise_sigma=0.4, noise_inner=0.1, noise_layer=0),
    "pni": dict(noise_kind="pni", noise_sigma=0.25),
}
KIND = {"rse": "per-sample", "pni": "per-call"}  # as ratzoo/models.py's docstring states


def _defense(kind: str, architecture: str = "preact_resnet18") -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(architecture=architecture, width=TINY_WIDTH[architecture], **DEFENSE_CONFIGS[kind])


def _plain_twin(model: torch.nn.Module) -> torch.nn.Module:
    """The same network without noise, holding the same weights."""
    cfg = ModelConfig.from_dict({**model.config.to_dict(), "noise_kind": "none", "noise_sigma": 0.0,
                                 "noise_inner": 0.0, "noise_layer": 1})
    plain = build_model(cfg).eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("weight_noise.alpha")}
    plain.load_state_dict(state)  # strict: every other tensor is the plain network's
    return plain


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_rse_puts_noise_before_every_convolution(architecture: str) -> None:
    model = _defense("rse", architecture)
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    noises = [m for m in model.modules() if isinstance(m, GaussianNoise)]
    assert len(noises) == len(convs)
    assert model.noise.channels == 3 and float(model.noise.sigma) == pytest.approx(0.4)  # init, on the pixels
    assert sorted(float(m.sigma) for m in noises if m is not model.noise) == [pytest.approx(0.1)] * (len(convs) - 1)


def test_rse_input_noise_is_on_the_pixels() -> None:
    """With the inner noise off, RSE is its plain network on x + 0.4 * N(0, I)."""
    model = _defense("rse").eval()
    x = torch.rand(2, 3, 32, 32)
    for m in ratzoo.noise.noise_modules(model):
        m.enabled = m is model.noise
    with torch.no_grad(), noise_control(model, generator=torch.Generator().manual_seed(7)):
        noisy = model(x)
        expected = _plain_twin(model)(x + 0.4 * torch.randn(x.shape, generator=torch.Generator().manual_seed(7)))
    torch.testing.assert_close(noisy, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_pni_noises_every_convolution_and_the_head(architecture: str) -> None:
    model = _defense("pni", architecture)
    layers = [m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert layers and all(isinstance(m.weight_noise, ratzoo.noise.WeightNoise) for m in layers)
    assert model.noise is None and not [m for m in model.modules() if isinstance(m, GaussianNoise)]
    assert {m.weight_noise.alpha.item() for m in layers} == {0.25}


def test_pni_weight_noise_std_is_alpha_times_the_weights_std() -> None:
    noise = ratzoo.noise.WeightNoise(0.25)
    w = torch.randn(64, 32, 3, 3) * 0.05
    with noise_control(noise, seed=0):
        eta = noise(w) - w
    assert abs(eta.std().item() / (0.25 * w.std().item()) - 1) < 0.02
    assert abs(eta.mean().item()) < 0.01 * w.std().item()


@pytest.mark.parametrize("kind", sorted(DEFENSE_CONFIGS))
def test_defense_randomness_is_detected_as_documented(kind: str) -> None:
    """By type (randomness_of) and by behaviour: RSE's copies of one image in one batch differ,
    PNI's agree (one weight draw per call) while two calls differ."""
    from ratzoo.randomness import randomness_of

    model = _defense(kind).eval()
    x = torch.rand(1, 3, 32, 32).expand(4, 3, 32, 32)
    assert randomness_of(model, x).kind == KIND[kind]
    with torch.no_grad():
        a, b = model(x), model(x)
    copies_differ = not torch.allclose(a[0], a[1])
    assert copies_differ == (kind == "rse")
    assert not torch.allclose(a, b)  # in eval() too: eval() never turns the noise off


@pytest.mark.parametrize("kind", sorted(DEFENSE_CONFIGS))
def test_defense_noise_off_is_the_plain_network(kind: str) -> None:
    model = _defense(kind).eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad(), noise_control(model, enabled=False):
        off = model(x)
        assert torch.equal(off, model(x)) and not is_randomized(model, x)
        assert torch.equal(off, _plain_twin(model)(x))
    assert is_randomized(model, x)  # and back on after the block


@pytest.mark.parametrize("kind", sorted(DEFENSE_CONFIGS))
def test_defense_seed_repeats_exactly(kind: str) -> None:
    model = _defense(kind).eval()
    x = torch.rand(3, 3, 32, 32)
    outs = []
    for seed in (5, 5, 6):
        with torch.no_grad(), noise_control(model, seed=seed):
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1]) and not torch.allclose(outs[0], outs[2])


def test_pni_alphas_get_gradients() -> None:
    model = _defense("pni")
    with noise_control(model, seed=0):
        model(torch.rand(4, 3, 32, 32)).logsumexp(1).mean().backward()
    alphas = [m.alpha for m in ratzoo.noise.noise_modules(model)]
    assert len(alphas) == 21  # 20 convolutions (stem, 16 in blocks, 3 shortcuts) and the head
    assert all(a.grad is not None and torch.isfinite(a.grad) and a.grad != 0 for a in alphas)


@pytest.mark.parametrize("kind", sorted(DEFENSE_CONFIGS))
def test_defense_checkpoint_round_trip(kind: str, tmp_path) -> None:
    model = _defense(kind).eval()
    ratzoo.save_checkpoint(model, tmp_path / kind)
    loaded = ratzoo.load(tmp_path / kind)
    assert loaded.config == model.config
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in model.state_dict().items())
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad(), noise_control(model, seed=1):
        a = model(x)
    with torch.no_grad(), noise_control(loaded, seed=1):
        # the same draws; loaded weights may take another convolution kernel (float rounding)
        torch.testing.assert_close(loaded(x), a, rtol=0, atol=1e-6)


def test_noise_inner_is_left_out_of_other_configs() -> None:
    """Committed checkpoints' config.json has no noise_inner: re-saved, it still has none."""
    assert "noise_inner" not in ModelConfig(noise_kind="fixed", noise_sigma=1.0).to_dict()
    rse = ModelConfig(**DEFENSE_CONFIGS["rse"])
    assert rse.to_dict()["noise_inner"] == 0.1 and ModelConfig.from_dict(rse.to_dict()) == rse


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(noise_kind="rse", noise_sigma=0.4, noise_layer=0), "noise_inner must be > 0"),
        (dict(noise_kind="rse", noise_sigma=0.4, noise_inner=0.1), "noise_layer must be 0"),
        (dict(noise_kind="rse", noise_sigma=0.0, noise_inner=0.1, noise_layer=0), "noise_sigma must be > 0"),
        (dict(noise_kind="fixed", noise_sigma=0.5, noise_inner=0.1), "noise_inner is RSE's"),
        (dict(noise_kind="pni", noise_sigma=0.0), "noise_sigma must be > 0"),
    ],
)
def test_defense_config_validation(overrides: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        ModelConfig(**overrides)
