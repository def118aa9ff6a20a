"""Each bundled checkpoint's measured results (``config.json`` and the model card's metadata)."""

from __future__ import annotations

from typing import Any

from train.metrics import REPO_ROOT


def certified_metrics(cert: dict[str, Any]) -> list[dict[str, Any]]:
    """Certified accuracies as card metrics (type ``certified_accuracy``)."""
    out = []
    for r, acc in cert["accuracy_at"].items():
        ci = (cert.get("ci95") or {}).get(r)
        out.append({"name": f"certified accuracy at L2 {r}", "type": "certified_accuracy",
                    "value": round(float(acc), 6), "n": cert["n"], "ci95": [round(c, 6) for c in ci] if ci else None,
                    "draws": cert["draws"], "alpha": cert["alpha"], "record": "certify"})
    return out


def card_metrics(res: dict[str, Any]) -> list[dict[str, Any]]:
    """A model's card metrics: its table, then its certified accuracies (if certified)."""
    return res["table"] + (certified_metrics(res["certified"]) if res.get("certified") else [])


def update_cards(results: dict[str, Any]) -> list[str]:
    from ratzoo.checkpoint import update_results

    done = []
    for model, res in results["models"].items():
        folder = REPO_ROOT / "checkpoints" / model
        if not (folder / "config.json").is_file() or not res["table"]:
            continue  # not measured by train.experiments yet: the card keeps the trainer's numbers
        update_results(folder, {"dataset": results["dataset"], "dataset_id": "uoft-cs/cifar10", "split": "test",
                                "source": "python -m train.experiments; python -m ratzoo certify; python -m train.report",
                                "metrics": card_metrics(res)})
        done.append(model)
    return done
