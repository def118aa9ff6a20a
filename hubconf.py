"""torch.hub entry points for the ratzoo model zoo, generated from the registry (timm's style).

One function per registry name (``ratzoo/zoo.json``, the only list of zoo models), each a thin
call of :func:`ratzoo.load` (an explicit folder > the checkpoint bundled in
``checkpoints/<name>/`` > the Hugging Face Hub cache). The models take images in [0, 1], NCHW
float, normalize them themselves, and keep their noise ON in ``eval()`` mode; use
``ratzoo.predict_proba`` for EOT predictions.

>>> import torch
>>> model = torch.hub.load("path/to/ratzoo", "rat", source="local")
>>> torch.hub.list("path/to/ratzoo", source="local")
['at', 'lerat', 'rat', 'rn', 'standard']

Only the core library is imported here: no Streamlit, no training code.
"""

from __future__ import annotations

from ratzoo import zoo as _zoo

dependencies = ["torch", "numpy", "safetensors", "huggingface_hub"]


def _entry_point(entry: _zoo.ZooEntry):
    def load(device: str = "cpu"):
        import ratzoo

        return ratzoo.load(entry.name, device=device)

    load.__name__ = load.__qualname__ = entry.name
    load.__doc__ = (f"{entry.description}.\n\n    Args:\n        device: where to put the model "
                    "(\"cpu\", \"cuda\", ...).\n    ")
    return load


for _entry in _zoo.entries().values():
    globals()[_entry.name] = _entry_point(_entry)
