"""Random resizing and padding at inference (Xie et al., ICLR 2018, "Mitigating adversarial
effects through randomization").

Before the network sees an image, it is resized to a random ``r x r`` (nearest neighbour) and
zero-padded at a random position to ``out_size x out_size``. The paper, on ImageNet's 299 px
inputs, draws ``r`` in [299, 331) and pads to 331 (331 / 299 = 1.107); on CIFAR-10's 32 px this
is ``r`` in [32, 36) padded to 36 (36 / 32 = 1.125, the nearest whole pixel). The network is
the undefended one: the defense needs no training, and PreActResNet's global average pooling
takes the larger input as it is.

Randomness: **per call**. As in the authors' code (``tf.random_uniform(())``, one scalar for
the size and one per padding offset), the whole batch shares one draw, so K copies of one image
in one batch are K copies of one draw: EOT must make K separate calls, which ratzoo's engine
finds by behaviour (:mod:`ratzoo.randomness`). Draws come from torch's global RNG, which
ratzoo's evaluations seed.

Athalye et al. (ICML 2018) broke it with EOT (0 % at Linf 4/255 on ImageNet, from the paper's
claimed 86 %). ``enabled = False`` switches the randomness off: the base model on the image as it is.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RandomResizePad(nn.Module):
    """``base`` behind Xie et al.'s random resize and pad.

    Args:
        base: the classifier (images in [0, 1]) that sees the transformed image.
        out_size: the padded size (36 for 32 px inputs; the paper's 331 for 299).
        min_size: the smallest resize (the input's own size, as in the paper); sizes are drawn
            uniformly from ``min_size .. out_size - 1``.
        pad_value: the padding's pixel value (0, black, as in the authors' code).
    """

    summary = "random resizing and padding of the input, one draw per call"

    def __init__(self, base: nn.Module, out_size: int = 36, min_size: int = 32, pad_value: float = 0.0) -> None:
        super().__init__()
        if not 0 < min_size < out_size:
            raise ValueError(f"need 0 < min_size < out_size, got min_size={min_size}, out_size={out_size}")
        self.base, self.out_size, self.min_size, self.pad_value = base, out_size, min_size, float(pad_value)
        self.enabled = True  # the randomness switch, never .training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled:
            return self.base(x)
        r = int(torch.randint(self.min_size, self.out_size, ()))
        left, top = (int(v) for v in torch.randint(0, self.out_size - r + 1, (2,)))
        x = F.interpolate(x, size=(r, r), mode="nearest")
        x = F.pad(x, (left, self.out_size - r - left, top, self.out_size - r - top), value=self.pad_value)
        return self.base(x)

    def extra_repr(self) -> str:
        return f"sizes {self.min_size}..{self.out_size - 1} padded to {self.out_size}, per call"
