"""Hugging Face model cards whose metadata carries the measured results (model-index).

Built with huggingface_hub's ``ModelCard`` / ``ModelCardData`` / ``EvalResult``. :func:`model_card`
is a function of its arguments alone: the library name, license, tags and paper/code links come
in as the :class:`~huggingface_hub.PyTorchModelHubMixin` metadata declared once on
:class:`ratzoo.models.RandomizedClassifier`, and whether the checkpoint is a zoo entry comes from
the caller (:meth:`RandomizedClassifier.generate_model_card`, what the mixin's ``save_pretrained``
and ``push_to_hub`` write, and :func:`ratzoo.checkpoint.update_results`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .judge import DEFAULT_DECISION_SAMPLES

if TYPE_CHECKING:
    from huggingface_hub.hub_mixin import MixinInfo

PAPER = "Araujo et al., Robust Neural Networks using Randomized Adversarial Training"


def _eval_results(name: str, results: dict[str, Any]) -> list[EvalResult]:
    out = []
    for m in results.get("metrics", []):
        out.append(
            EvalResult(
                task_type="image-classification",
                task_name="Image Classification",
                dataset_type=results.get("dataset_id", "uoft-cs/cifar10"),
                dataset_name=results.get("dataset", "CIFAR-10"),
                dataset_split=results.get("split", "test"),
                metric_type=m.get("type", "accuracy"),
                metric_name=m["name"],
                metric_value=_display(m),
            )
        )
    return out


def _display(m: dict[str, Any]) -> float:
    """Accuracies are stored as fractions and shown in %; norms (unit "L2") as they are."""
    if m.get("unit") == "L2":
        return round(float(m["value"]), 4)
    return round(100 * float(m["value"]), 2)


def results_table(results: dict[str, Any]) -> str:
    """A markdown table of the metrics (accuracies in %, norms in L2 units)."""
    rows = ["| metric | value | 95% CI | n |", "| --- | --- | --- | --- |"]
    for m in results.get("metrics", []):
        ci = m.get("ci95")
        pct = m.get("unit") != "L2"
        ci_s = f"{100 * ci[0]:.1f} - {100 * ci[1]:.1f}" if ci and pct else ""
        val = f"{_display(m):.2f}{' %' if pct else ''}"
        rows.append(f"| {m['name']} | {val} | {ci_s} | {m.get('n', '')} |")
    return "\n".join(rows)


def model_card(config: dict[str, Any], info: MixinInfo, *, repo_id: str | None = None,
               in_zoo: bool = False) -> ModelCard:
    """The model card (README.md) of a checkpoint.

    Args:
        config: the checkpoint's ``config.json`` dict.
        info: the model class's mixin metadata (``_hub_mixin_info``: library name, license,
            tags, code and paper links).
        repo_id: the Hub repo it goes to, if any (its load line then names the repo).
        in_zoo: whether ``config["name"]`` is a zoo name (its load line then loads by name).
    """
    name = config.get("name", "model")
    model = config["model"]
    training = config.get("training", {})
    results = config.get("results", {})
    data = ModelCardData(
        **info.model_card_data.to_dict(),
        datasets=["uoft-cs/cifar10"],
        model_name=f"ratzoo-{name}",
        eval_results=_eval_results(f"ratzoo-{name}", results) or None,
    )
    if model["noise_kind"] == "none":
        noise = "none (deterministic)"
    elif model["noise_kind"] == "rse":
        noise = (f"RSE (Liu et al. 2018): Gaussian, sigma={model['noise_sigma']} on the input pixels and "
                 f"{model['noise_inner']} before every other convolution")
    elif model["noise_kind"] == "pni":
        noise = (f"PNI-W (Rakin et al. 2019): every convolution's and the head's weights W + alpha * N(0, std(W)^2), "
                 f"alpha learned per layer from {model['noise_sigma']}, one draw per call")
    else:
        noise = (f"{model['noise_kind']} Gaussian, sigma={model['noise_sigma']}, "
                 f"{'on the input pixels' if model['noise_layer'] == 0 else 'after the first layer'}")
    body = [
        f"# ratzoo-{name}",
        "",
        f"A CIFAR-10 classifier from the [ratzoo]({info.repo_url}) zoo ([{PAPER}]({info.paper_url})).",
        "",
        f"- architecture: `{model['architecture']}`, width {model['width']}",
        f"- noise: {noise}",
        f"- training method: `{training.get('method', 'unknown')}`",
        "- inputs: images in [0, 1], NCHW float; normalization happens inside the model",
        "",
        "```python",
        "import ratzoo",
        # the load line that works where the card is read: the Hub repo, a zoo name, or this folder
        f"model = ratzoo.load(\"hf-hub:{repo_id}\")" if repo_id else
        f"model = ratzoo.load({name!r})  # or ratzoo.load(\"hf-hub:OWNER/NAME\") for a published copy"
        if in_zoo else
        "model = ratzoo.load(\"path/to/this/folder\")  # or ratzoo.load(\"hf-hub:OWNER/NAME\") once pushed",
        f"p = ratzoo.predict_proba(model, images, samples={DEFAULT_DECISION_SAMPLES})  # EOT prediction",
        "```",
        "",
    ]
    if results.get("metrics"):
        body += [
            "## Measured results",
            "",
            f"Measured by `ratzoo.evaluate` on {results.get('dataset', 'CIFAR-10')} ({results.get('split', 'test')} split). "
            "Randomized models are attacked with EOT and an example counts as robust when the "
            "EOT prediction (mean softmax over fresh noise draws) on the adversarial image is the true label.",
            "",
            results_table(results),
            "",
        ]
    else:
        body += ["## Measured results", "", "Not evaluated yet.", ""]
    if training:
        body += ["## Training", ""]
        if training.get("command"):
            body += ["Reproduce with:", "", "```bash", training["command"], "```", ""]
        body += ["```json", json.dumps(training, indent=2), "```", ""]
    return ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n" + "\n".join(body))
