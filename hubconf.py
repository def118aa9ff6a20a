"""torch.hub entry points for the ratzoo model zoo.

One function per zoo name, each a thin call of :func:`ratzoo.load` (an explicit folder
> the checkpoint bundled in ``checkpoints/<name>/`` > the Hugging Face Hub cache). The
models take images in [0, 1], NCHW float, normalize them themselves, and keep their
noise ON in ``eval()`` mode; use ``ratzoo.predict_proba`` for EOT predictions.

>>> import torch
>>> model = torch.hub.load("path/to/ratzoo", "rat", source="local")
>>> torch.hub.list("path/to/ratzoo", source="local")
['at', 'lerat', 'rat', 'rn', 'standard']

Only the core library is imported here: no Streamlit, no training code.
"""

from __future__ import annotations

dependencies = ["torch", "numpy", "safetensors", "huggingface_hub"]


def _load(name: str, device: str):
    import ratzoo

    return ratzoo.load(name, device=device)


def standard(device: str = "cpu"):
    """PreActResNet-18 (width 16), clean training: the undefended baseline.

    Args:
        device: where to put the model ("cpu", "cuda", ...).
    """
    return _load("standard", device)


def at(device: str = "cpu"):
    """PreActResNet-18 (width 16), Linf adversarial training (Madry et al.), deterministic.

    Args:
        device: where to put the model ("cpu", "cuda", ...).
    """
    return _load("at", device)


def rn(device: str = "cpu"):
    """PreActResNet-18 (width 16) with Gaussian noise after the first layer, trained on
    clean images (Pinot et al.'s randomized network).

    Args:
        device: where to put the model ("cpu", "cuda", ...).
    """
    return _load("rn", device)


def rat(device: str = "cpu"):
    """PreActResNet-18 (width 16), Randomized Adversarial Training (the paper's Algorithm 1).

    Args:
        device: where to put the model ("cpu", "cuda", ...).
    """
    return _load("rat", device)


def lerat(device: str = "cpu"):
    """PreActResNet-18 (width 16), RAT with a learned per-channel noise std (LeRAT).

    Args:
        device: where to put the model ("cpu", "cuda", ...).
    """
    return _load("lerat", device)
