"""CIFAR-style classifiers with optional Gaussian noise injection.

Every model takes images in [0, 1] (NCHW, float) and normalizes them itself. It is
split as ``logits = head(noise(stem(normalize(x))))`` where the *stem* is the paper's
"first layer" (a 3x3 convolution followed by a non-affine batch norm, so that the
injected noise is measured against unit-variance features and cannot be drowned by
simply scaling the convolution up). ``noise_layer=0`` instead adds the noise to the
input pixels (before normalization): that is classic randomized smoothing, for which
Cohen et al.'s certificate is exact.

Two trained defenses of the literature use the same backbones with more noise:

- ``noise_kind="rse"``, random self-ensemble (Liu et al., ECCV 2018, "Towards Robust Neural
  Networks via Random Self-ensemble"): a noise layer ``x + N(0, sigma^2)`` before *every*
  convolution, ``noise_sigma`` (the paper's "init") on the input pixels before the first one
  and ``noise_inner`` before each of the others (a shortcut convolution gets its own draw, as
  in the authors' ResNeXt). The authors' CIFAR-10 run (``train_rse.sh`` of
  github.com/xuanqing94/RobustNet) uses init 0.4, inner 0.1, on unnormalized [0, 1] images:
  hence the input noise sits before our normalization (``noise_layer=0``). Trained with the
  noise on, without adversarial examples; the prediction is the ensemble over draws, which
  ratzoo's decision rule already is. Per-sample randomness.
- ``noise_kind="pni"``, PNI-W, layer-wise parametric noise injection on the weights (Rakin et
  al., CVPR 2019): every convolution and the linear head compute with ``W + alpha * eta``,
  ``eta ~ N(0, std(W)^2)`` (:class:`~ratzoo.noise.WeightNoise`), ``alpha`` a learned scalar per
  layer initialised to ``noise_sigma`` (the paper's 0.25). One weight draw per forward call,
  shared by the batch: per-call randomness. (``noise_layer`` is unused.)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import ModelCard, PyTorchModelHubMixin
from torch import nn

from .fileformat import write_weights
from .noise import NOISE_KINDS, GaussianNoise, WeightNoise

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model's architecture (stored in ``config.json``).

    Attributes:
        architecture: a name from :data:`ARCHITECTURES` ("preact_resnet18", "wide_resnet28_10").
        width: base width (PreActResNet-18: channels of the first stage, 64 is the
            standard model, 16 our CPU-size one) or widen factor (WideResNet: 10).
        num_classes: number of output logits.
        noise_kind: "none" (standard, AT), "fixed" (R.N., RAT), "learned" (LeRAT), "rse"
            (noise before every convolution) or "pni" (learned noise on every layer's weights).
        noise_sigma: the noise std (initial value when learned), in units of the
            noised activations: unit-variance stem features (layer 1) or pixels in
            [0, 1] (layer 0). RSE: the std on the input pixels. PNI: the initial ``alpha``,
            the weight noise's std in units of each layer's weight std.
        noise_layer: 1 = after the first layer (the paper), 0 = on the input pixels
            (RSE: must be 0; PNI: unused).
        mean: per-channel normalization mean applied inside the model.
        std: per-channel normalization std applied inside the model.
        dropout: dropout rate inside WideResNet blocks (unused by PreActResNet).
        noise_inner: RSE only: the noise std before every convolution but the first, in
            units of that convolution's input (0 for every other kind).
    """

    architecture: str = "preact_resnet18"
    width: int = 64
    num_classes: int = 10
    noise_kind: str = "none"
    noise_sigma: float = 0.0
    noise_layer: int = 1
    mean: tuple[float, ...] = CIFAR10_MEAN
    std: tuple[float, ...] = CIFAR10_STD
    dropout: float = 0.0
    noise_inner: float = 0.0

    def __post_init__(self) -> None:
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {self.architecture!r}; known: {sorted(ARCHITECTURES)}"
            )
        if not isinstance(self.width, int) or self.width < 1:
            raise ValueError(f"width must be a positive integer, got {self.width!r}")
        if self.noise_kind not in NOISE_KINDS:
            raise ValueError(f"noise_kind must be one of {NOISE_KINDS}, got {self.noise_kind!r}")
        if self.noise_kind != "none":
            s = self.noise_sigma
            if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
                raise ValueError(f"noise_sigma must be > 0 for noise_kind={self.noise_kind!r}, got {s!r}")
        if self.noise_layer not in (0, 1):
            raise ValueError(f"noise_layer must be 0 (input) or 1 (after the first layer), got {self.noise_layer!r}")
        if self.noise_kind == "rse":
            s = self.noise_inner
            if not (isinstance(s, (int, float)) and math.isfinite(s) and s > 0):
                raise ValueError(f"noise_inner must be > 0 for noise_kind='rse' (the noise before the inner convolutions), got {s!r}")
            if self.noise_layer != 0:
                raise ValueError("noise_kind='rse' puts its first noise on the input pixels: noise_layer must be 0, "
                                 f"got {self.noise_layer!r}")
        elif self.noise_inner != 0:
            raise ValueError(f"noise_inner is RSE's (noise_kind='rse'); it must be 0 for noise_kind={self.noise_kind!r}, "
                             f"got {self.noise_inner!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError("mean and std must be 3 numbers each, std > 0")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` section; fields added after the first checkpoints are left out at
        their defaults, so those checkpoints' config.json is the same when re-saved."""
        d = dataclasses.asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        for f in dataclasses.fields(self):
            if f.name in _OMITTED_AT_DEFAULT and d[f.name] == f.default:
                del d[f.name]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown model config fields {sorted(unknown)}; known: {sorted(names)}")
        d = dict(d)
        for k in ("mean", "std"):
            if k in d:
                d[k] = tuple(float(v) for v in d[k])
        return cls(**d)


_OMITTED_AT_DEFAULT = frozenset({"noise_inner"})


# --------------------------------------------------------------------------- backbones


class _NoisyConv2d(nn.Conv2d):
    """A convolution computing with PNI's noisy weights (``self.weight_noise``)."""

    def __init__(self, *args: Any, alpha: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weight_noise = WeightNoise(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, self.weight_noise(self.weight), self.bias)


class _NoisyLinear(nn.Linear):
    """A linear layer computing with PNI's noisy weights (``self.weight_noise``)."""

    def __init__(self, *args: Any, alpha: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.weight_noise = WeightNoise(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight_noise(self.weight), self.bias)


@dataclasses.dataclass(frozen=True)
class _Layers:
    """How a backbone makes its layers: plain, with RSE's noise before the inner convolutions,
    or with PNI's noisy weights. Noise modules draw no random numbers when built, so a plain
    model initialises exactly as before they existed."""

    inner_noise: float = 0.0
    weight_alpha: float = 0.0

    @classmethod
    def of(cls, cfg: ModelConfig) -> _Layers:
        return cls(inner_noise=cfg.noise_inner, weight_alpha=cfg.noise_sigma if cfg.noise_kind == "pni" else 0.0)

    def conv(self, cin: int, cout: int, kernel: int, stride: int = 1, padding: int = 0) -> nn.Conv2d:
        if self.weight_alpha:
            return _NoisyConv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False, alpha=self.weight_alpha)
        return nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)

    def linear(self, cin: int, cout: int) -> nn.Linear:
        return _NoisyLinear(cin, cout, alpha=self.weight_alpha) if self.weight_alpha else nn.Linear(cin, cout)

    def noise(self, channels: int) -> GaussianNoise | None:
        """RSE's noise before a convolution reading ``channels`` channels (None without RSE)."""
        return GaussianNoise(channels, self.inner_noise) if self.inner_noise else None


def _noised(noise: GaussianNoise | None, x: torch.Tensor) -> torch.Tensor:
    return x if noise is None else noise(x)


class _Stem(nn.Module):
    """The paper's first layer: 3x3 conv + non-affine batch norm."""

    def __init__(self, out_channels: int, layers: _Layers) -> None:
        super().__init__()
        self.conv = layers.conv(3, out_channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(out_channels, affine=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _PreActBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, dropout: float, layers: _Layers) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = layers.conv(cin, cout, 3, stride=stride, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = layers.conv(cout, cout, 3, padding=1)
        self.dropout = dropout
        self.shortcut = layers.conv(cin, cout, 1, stride=stride) if stride != 1 or cin != cout else None
        self.noise1, self.noise2 = layers.noise(cin), layers.noise(cout)
        self.noise_shortcut = layers.noise(cin) if self.shortcut is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        sc = self.shortcut(_noised(self.noise_shortcut, out)) if self.shortcut is not None else x
        out = self.conv1(_noised(self.noise1, out))
        out = F.relu(self.bn2(out))
        if self.dropout > 0:
            out = F.dropout(out, self.dropout, self.training)
        return self.conv2(_noised(self.noise2, out)) + sc


class _ResNetBody(nn.Module):
    """Pre-activation residual stages, final BN-ReLU, global pooling and a linear head."""

    def __init__(self, cin: int, stages: list[tuple[int, int, int]], num_classes: int, dropout: float,
                 layers: _Layers) -> None:
        super().__init__()
        blocks_ = []
        for cout, blocks, stride in stages:
            for i in range(blocks):
                blocks_.append(_PreActBlock(cin, cout, stride if i == 0 else 1, dropout, layers))
                cin = cout
        self.blocks = nn.Sequential(*blocks_)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = layers.linear(cin, num_classes)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn(self.blocks(h)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def _preact_resnet18(cfg: ModelConfig) -> tuple[nn.Module, nn.Module, int]:
    w = cfg.width
    stages = [(w, 2, 1), (2 * w, 2, 2), (4 * w, 2, 2), (8 * w, 2, 2)]
    layers = _Layers.of(cfg)
    return _Stem(w, layers), _ResNetBody(w, stages, cfg.num_classes, 0.0, layers), w


def _wide_resnet28(cfg: ModelConfig) -> tuple[nn.Module, nn.Module, int]:
    k, n = cfg.width, (28 - 4) // 6
    stages = [(16 * k, n, 1), (32 * k, n, 2), (64 * k, n, 2)]
    layers = _Layers.of(cfg)
    return _Stem(16, layers), _ResNetBody(16, stages, cfg.num_classes, cfg.dropout, layers), 16


ARCHITECTURES: dict[str, Callable[[ModelConfig], tuple[nn.Module, nn.Module, int]]] = {
    "preact_resnet18": _preact_resnet18,
    "wide_resnet28_10": _wide_resnet28,
}


# --------------------------------------------------------------------------- classifier


PAPER_URL = "https://arxiv.org/abs/1903.10219"
REPO_URL = "https://github.com/ratzoo/ratzoo"
HUB_TAGS = ["image-classification", "adversarial-robustness", "randomized-adversarial-training", "cifar10"]


class RandomizedClassifier(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="ratzoo",
    license="mit",
    tags=HUB_TAGS,
    paper_url=PAPER_URL,
    repo_url=REPO_URL,
):
    """``logits = head(noise(stem(normalize(x))))`` for images ``x`` in [0, 1].

    Args:
        config: the :class:`ModelConfig` describing architecture, noise and normalization.

    Shapes: ``x`` is ``(N, 3, 32, 32)`` float in [0, 1]; the output is ``(N, num_classes)``
    logits. The noise module (``self.noise``, a :class:`GaussianNoise` or ``None``; RSE's
    input noise, whose inner noise and PNI's weight noise live in the layers) is on by
    default, in ``train()`` and ``eval()`` alike; switch every noise module with
    :func:`ratzoo.noise_control`.

    ``save_pretrained`` / ``from_pretrained`` / ``push_to_hub`` come from huggingface_hub's
    :class:`~huggingface_hub.PyTorchModelHubMixin` (config.json from the :class:`ModelConfig`,
    model.safetensors, a model card with ratzoo's library name, tags and paper link).
    :func:`ratzoo.save_checkpoint` and :func:`ratzoo.push_to_hub` call them with the
    checkpoint's training record and measured results.

    >>> model.save_pretrained("my-rat")                   # or model.push_to_hub("you/my-rat")
    >>> RandomizedClassifier.from_pretrained("my-rat")    # or "you/my-rat"; ratzoo.load also works
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.tensor(config.mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(config.std).view(1, 3, 1, 1), persistent=False)
        self.stem, self.head, stem_channels = ARCHITECTURES[config.architecture](config)
        self.noise: GaussianNoise | None = None
        if config.noise_kind in ("fixed", "learned", "rse"):
            channels = 3 if config.noise_layer == 0 else stem_channels
            kind = "fixed" if config.noise_kind == "rse" else config.noise_kind
            self.noise = GaussianNoise(channels, config.noise_sigma, kind)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The first layer's output (what layer-1 noise is added to), noise excluded."""
        return self.stem((x - self.mean) / self.std)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.noise is not None and self.config.noise_layer == 0:
            x = self.noise(x)
        h = self.stem((x - self.mean) / self.std)
        if self.noise is not None and self.config.noise_layer == 1:
            h = self.noise(h)
        return self.head(h)

    # ----------------------------------------------------------- PyTorchModelHubMixin hooks

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the weights file (the mixin writes config.json and the card around it).

        Ours, not the mixin's ``safetensors.torch.save_model``, which writes other header
        metadata: :func:`ratzoo.fileformat.weights_bytes` gives a re-saved or pushed model the
        exact bytes, hence the sha256 the registry pins, of its file.
        """
        write_weights(self, save_directory)

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | Path,
        *,
        force_download: bool = False,
        token: str | bool | None = None,
        cache_dir: str | Path | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        **model_kwargs: Any,
    ) -> RandomizedClassifier:
        """A checkpoint folder or Hub repo id, loaded as :func:`ratzoo.load` loads a path or an
        ``hf-hub:`` name (one download, the same sha256 checks and errors).

        The mixin's arguments, plus ``map_location`` and ``expected_sha256``. Overridden only to
        go straight to :meth:`_from_pretrained`: the mixin's version first downloads
        ``config.json`` on its own, to build constructor arguments that ``config.json``'s
        ``model`` section already gives, and lets that download's offline errors through raw.
        """
        return cls._from_pretrained(
            model_id=str(pretrained_model_name_or_path), revision=revision, cache_dir=cache_dir,
            force_download=force_download, local_files_only=local_files_only, token=token, **model_kwargs)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | Path | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        map_location: str = "cpu",
        expected_sha256: str | None = None,
        **model_kwargs: Any,
    ) -> RandomizedClassifier:
        """Load with :func:`ratzoo.hub.load_pretrained`: strict, sha256-checked, float32 (the
        mixin's loader uses ``strict=False`` and checks no sha256)."""
        # The mixin makes loading a classmethod of the model, so this hook must reach the loader
        # above models: the one upward import, made at call time because hub imports models.
        from .hub import load_pretrained

        return load_pretrained(model_id, revision=revision, cache_dir=cache_dir, force_download=force_download,
                               local_files_only=local_files_only, token=token, device=map_location,
                               expected_sha256=expected_sha256)

    def generate_model_card(self, *args: Any, checkpoint: dict[str, Any] | None = None, repo_id: str | None = None,
                            in_zoo: bool = False, **kwargs: Any) -> ModelCard:
        """The model card: ratzoo's template with the measured results as model-index
        (:func:`ratzoo.card.model_card`); ``checkpoint`` is the checkpoint's config.json dict,
        ``repo_id`` the Hub repo it is pushed to, ``in_zoo`` whether its name is a zoo name."""
        from .card import model_card

        return model_card(checkpoint or {"name": "model", "model": self.config.to_dict()}, self._hub_mixin_info,
                          repo_id=repo_id, in_zoo=in_zoo)


def build_model(config: ModelConfig | None = None, **overrides: Any) -> RandomizedClassifier:
    """Build an untrained model from a config (or keyword overrides of the default one).

    >>> model = build_model(architecture="preact_resnet18", width=16, noise_kind="fixed", noise_sigma=0.5)
    >>> model(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    if config is None:
        config = ModelConfig(**overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    return RandomizedClassifier(config)
