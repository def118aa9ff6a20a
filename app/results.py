"""The results tab's rows, read from the zoo's cards (:func:`ratzoo.list_models`) and the
measurement records (:class:`ratzoo.Record`); nothing here guesses a schema from key names.

Units travel with the rows: accuracies are percentages, distances (C&W's median smallest
change) are L2 values in [0, 1] pixel units and never share an axis with a percentage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import ratzoo

from .logic import RESULTS

ACCURACY_TYPES = ("accuracy", "robust_accuracy")  # a card metric of these types is a fraction
SHORT = {"none": "no attack", "fgsm": "FGSM", "pgd-linf": "PGD (Linf)", "pgd-l2": "PGD (L2)",
         "apgd-ce": "Auto-PGD (Linf)", "cw-l2": "Carlini-Wagner (L2)"}


def model_labels(models: list[dict[str, Any]]) -> dict[str, str]:
    return {m["name"]: m["label"] for m in models}


def accuracy_rows(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model and measured accuracy on its card: ``model``, ``setting``, ``accuracy (%)``, ``n``."""
    return [{"model": m["label"], "setting": x["name"], "accuracy (%)": round(100 * float(x["value"]), 1),
             "n": x.get("n")}
            for m in models for x in m.get("metrics", []) if x.get("type") in ACCURACY_TYPES]


def distance_rows(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The card metrics that are distances (C&W's median smallest change, in L2)."""
    return [{"model": m["label"], "setting": x["name"], "L2 distance": round(float(x["value"]), 3), "n": x.get("n")}
            for m in models for x in m.get("metrics", []) if x.get("type") == "median_l2_norm"]


SHORT_METRICS = {"clean accuracy": "clean", "FGSM Linf 8/255": "FGSM 8/255", "PGD-20 Linf 8/255": "PGD-20 8/255",
                 "PGD-20 L2 0.5": "PGD-20 L2 0.5", "APGD-CE Linf 8/255": "APGD-CE 8/255"}


def noise_words(m: dict[str, Any]) -> str:
    """A model's noise in a few words (a learned std by where training left it)."""
    noise = m.get("noise") or {}
    if noise.get("noise_kind") in (None, "none"):
        return "none"
    if "learned_sigma_mean" in noise:
        return f"learned std, mean {noise['learned_sigma_mean']:.2f} (min {noise['learned_sigma_min']:.2f})"
    return f"std {noise.get('noise_sigma', 0):g}"


def zoo_table(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The zoo as a table that fits a desktop screen: model, noise, the headline accuracies (%)
    and C&W's median smallest change (an L2 distance, in a column without "%")."""
    rows = []
    for m in models:
        if not m.get("metrics"):  # nothing measured on its card yet (a defense entry has no card)
            continue
        row: dict[str, Any] = {"model": m["label"], "noise": noise_words(m)}
        for x in m.get("metrics", []):
            if x.get("type") in ACCURACY_TYPES and x["name"] in SHORT_METRICS:
                row[f"{SHORT_METRICS[x['name']]} (%)"] = round(100 * float(x["value"]), 1)
            elif x.get("type") == "median_l2_norm":
                row["C&W median smallest change (L2)"] = round(float(x["value"]), 3)
        rows.append(row)
    return rows


def load_records(folder: Path = RESULTS / "records") -> tuple[list[ratzoo.Record], int]:
    """Every record in ``folder`` (sorted by file name) and how many files could not be read."""
    named, bad = load_named_records(folder)
    return list(named.values()), bad


def load_named_records(folder: Path = RESULTS / "records") -> tuple[dict[str, ratzoo.Record], int]:
    """:func:`load_records` by file stem (:meth:`ratzoo.Record.load_folder`)."""
    return ratzoo.Record.load_folder(folder)


def sweep_rows(records: list[ratzoo.Record], labels: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """The paper's Figures 3 (accuracy vs Linf budget) and 4 (vs EOT draws), from the records' stage."""
    out: dict[str, list[dict[str, Any]]] = {"fig3": [], "fig4": []}
    for r in records:
        stage = r.extra.get("stage")
        if stage not in out or r.model not in labels:
            continue
        x = round(float(r.params["eps"]) * 255, 2) if stage == "fig3" else int(r.eot_samples or 1)
        out[stage].append({"model": labels[r.model], "attack": SHORT.get(r.attack, r.attack),
                           "budget (/255)" if stage == "fig3" else "noise draws per step": x,
                           "accuracy (%)": round(100 * r.robust_accuracy, 1), "n": r.n})
    return out


def record_rows(records: dict[str, ratzoo.Record], labels: dict[str, str]) -> list[dict[str, Any]]:
    """The raw records by name (:func:`load_named_records`) for the developer expander: which record
    each row is and whether it is a copy, no file paths; a cell with nothing to say is empty text,
    never Python's ``None``."""
    rows = []
    for name, r in records.items():
        minutes = r.elapsed_s / 60 if r.elapsed_s and math.isfinite(r.elapsed_s) else None
        rows.append({"record": name.split("__", 1)[-1], "model": labels.get(r.model, r.model),
                     "attack": SHORT.get(r.attack, r.attack), "images": r.n,
                     "robust accuracy (%)": f"{100 * r.robust_accuracy:.1f}",
                     "noise draws per step": ("no noise" if r.decision_samples <= 1 else
                                              "no attack" if r.eot_samples is None else str(r.eot_samples)),
                     "decision draws": str(r.decision_samples) if r.decision_samples > 1 else "one prediction",
                     "minutes": "" if minutes is None else f"{minutes:.1f}",
                     "note": r.extra.get("note", "")})
    return rows
