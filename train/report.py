"""Turn the experiment records into results: ``python -m train.report``.

Reads ``checkpoints/results/records/*.json`` (written by ``python -m train.experiments``)
and writes, never by hand:

- ``checkpoints/results/results.json``: the zoo table, the paper's Figures 3-5 data;
- ``checkpoints/results/fig2_regions.png``, ``fig3_eps.png``, ``fig4_eot.png``, ``fig5_cw_norms.png``;
- the README's zoo table (between the ``zoo-table`` markers) and, in ``docs/*.md``, every other
  generated block: the measuring time (``zoo-notes``), the training commands (``zoo-commands``),
  the comparison with the paper's Table 2 (``paper-table``), the findings (``findings``), the
  certified accuracies (``certify-table``, from ``checkpoints/results/certify_<model>.json``
  written by ``python -m ratzoo.certify``) and the paper's Figure 2 on the zoo (``figure2``);
- each bundled checkpoint's measured results (``config.json`` + model card metadata).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

import torch

from ratzoo.benchmark import THREAT_MODELS, eps_text
from ratzoo.evaluate import accuracy_at_thresholds
from ratzoo.geometry import FIGURE2_EPS, REGION_WORDS, figure2
from ratzoo.record import Record, compare
from ratzoo.stats import wilson_interval
from ratzoo import DEFAULT_DECISION_SAMPLES, zoo
from ratzoo.zoo import PAPER_TABLE2  # (Linf, L2) robust accuracy per method
from train import leaderboard
from train.blocks import replace_block

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS = REPO_ROOT / "checkpoints" / "results"
BENCHMARKS = RESULTS / "benchmark"  # train/benchmark_zoo.sh's <model>_<threat>.json records
MODELS = tuple(zoo.trained_names())  # names, labels and order: the registry's (defenses have no card)
LABELS = zoo.labels()
# record key -> (metric name in cards/README, metric type)
TABLE = [
    ("clean", "clean accuracy", "accuracy"),
    ("fgsm_linf_8", "FGSM Linf 8/255", "robust_accuracy"),
    ("pgd20_linf_8", "PGD-20 Linf 8/255", "robust_accuracy"),
    ("pgd20_l2_0.5", "PGD-20 L2 0.5", "robust_accuracy"),
    ("apgd_ce_linf_8", "APGD-CE Linf 8/255", "robust_accuracy"),
]
CW_THRESHOLDS = ("0.25", "0.5", "1.0")
MARK_START, MARK_END = "<!-- zoo-table:start -->", "<!-- zoo-table:end -->"
PAPER_START, PAPER_END = "<!-- paper-table:start -->", "<!-- paper-table:end -->"
CERT_START, CERT_END = "<!-- certify-table:start -->", "<!-- certify-table:end -->"
PAPER_LINF_NAME = "PGD-10 Linf 0.15 (paper's Table 2 setting)"
CW_NOT_FOOLED_NAME = "C&W-L2 not fooled (unbounded)"
CW_AT_05, PGD_L2_05 = "C&W-L2 accuracy at L2 0.5", "PGD-20 L2 0.5"  # the L2 0.5 metrics compared
# the leaderboard's threat models, in words ("Linf 8/255", "L2 0.5"), and per threat model
# (= benchmark record suffix): (metric name, the table's single attacks at the same budget)
BENCHMARK_WORDS = {t: f"{t} {eps_text(t, eps)}" for t, eps in THREAT_MODELS.items()}
BENCHMARK_METRICS = {"Linf": (f"Benchmark {BENCHMARK_WORDS['Linf']}", ("PGD-20 Linf 8/255", "APGD-CE Linf 8/255")),
                     "L2": (f"Benchmark {BENCHMARK_WORDS['L2']}", (PGD_L2_05,))}


def load_records(folder: Path = RESULTS / "records") -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*__*.json")):
        model, key = path.stem.split("__", 1)
        out.setdefault(model, {})[key] = json.loads(path.read_text())
    return out


def _metric(name: str, typ: str, value: float, rec: dict[str, Any], ci: list[float] | None) -> dict[str, Any]:
    eot = rec.get("effective_eot_samples")
    out = {"name": name, "type": typ, "value": round(float(value), 6), "n": rec["n"],
           "ci95": [round(c, 6) for c in ci] if ci else None,
           "eot_samples": eot, "decision_samples": rec.get("decision_samples"), "record": rec.get("key")}
    steps = (rec.get("params") or {}).get("steps")
    if steps is not None:
        out["steps"] = int(steps)  # every published number states its iterations
    return out


def metric_label(m: dict[str, Any]) -> str:
    """A metric's name with its iterations where the name does not say them ("APGD-CE-50 Linf
    8/255"; "PGD-20 ..." already does)."""
    name, steps = m["name"], m.get("steps")
    if steps is None or any(ch.isdigit() for ch in name.split(" ")[0]):
        return name
    head, _, rest = name.partition(" ")
    return f"{head}-{steps} {rest}" if head == "APGD-CE" else name


TABLE_COLUMNS = [*zip([name for _, name, _ in TABLE], ["clean", "FGSM 8/255", "PGD-20 8/255", "PGD-20 L2 0.5",
                                                      "APGD-CE 8/255"], strict=True),
                 *((name, f"benchmark {eps_text(t, THREAT_MODELS[t]) if t == 'Linf' else BENCHMARK_WORDS[t]}")
                   for t, (name, _) in BENCHMARK_METRICS.items()),
                 *((f"C&W-L2 accuracy at L2 {t}", f"C&W @{t}") for t in CW_THRESHOLDS),
                 ("C&W-L2 median minimal norm", "C&W median L2")]
"""The README zoo table's columns: (metric name, header), in order."""


def benchmark_metrics(model: str, benchmarks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The model's leaderboard numbers (``ratzoo.benchmark`` records) as table metrics; their
    ``record`` is the record's path under the results folder (``benchmark/rat_Linf.json``)."""
    out = []
    for suffix, (name, _) in BENCHMARK_METRICS.items():
        rec = benchmarks.get(f"{model}_{suffix}")
        if rec is not None:
            metric = _metric(name, "robust_accuracy", rec["robust_accuracy"], rec, rec["robust_accuracy_ci95"])
            out.append({**metric, "record": (BENCHMARKS / f"{model}_{suffix}.json").relative_to(RESULTS).as_posix()})
    return out


def table_metrics(recs: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The per-model metrics that go into results.json, the README and the card."""
    metrics = []
    for key, name, typ in TABLE:
        rec = recs.get(key)
        if rec is None:
            continue
        value = rec["clean_accuracy"] if key == "clean" else rec["robust_accuracy"]
        ci = rec["clean_accuracy_ci95"] if key == "clean" else rec["robust_accuracy_ci95"]
        metrics.append(_metric(name, typ, value, rec, ci))
    t2 = recs.get("paper_pgd10_linf_0.15")
    if t2 is not None:
        metrics.append(_metric(PAPER_LINF_NAME, "robust_accuracy", t2["robust_accuracy"], t2,
                               t2["robust_accuracy_ci95"]))
    cw = recs.get("cw_l2")
    if cw is not None:
        metrics.append(_metric(CW_NOT_FOOLED_NAME, "robust_accuracy", cw["robust_accuracy"], cw,
                               cw["robust_accuracy_ci95"]))
        acc_at = cw.get("accuracy_at", {})
        for t in CW_THRESHOLDS:
            entry = acc_at.get(f"{float(t):g}") or acc_at.get(t)
            if entry is not None:
                metrics.append(_metric(f"C&W-L2 accuracy at L2 {t}", "robust_accuracy", entry["accuracy"], cw,
                                       entry.get("ci95")))
        med = (cw.get("norms") or {}).get("median")
        if med is not None:
            m = _metric("C&W-L2 median minimal norm", "median_l2_norm", med, cw, None)
            m["unit"] = "L2"
            metrics.append(m)
    return metrics


def cw_accuracy_on_first(rec: dict[str, Any] | None, n: int, threshold: float = 0.5) -> dict[str, Any] | None:
    """A C&W record's accuracy at an L2 threshold on its first ``n`` images, with its 95% CI, from
    its per-image lists by the evaluator's own rule (``ratzoo.evaluate.accuracy_at_thresholds``);
    None when the record lacks them or has fewer images. This puts the table's kappa-0 C&W next
    to a margin record of fewer images on the same images."""
    if not rec or n <= 0:
        return None
    cols = [rec.get(k) for k in ("clean_correct_per_image", "fooled_per_image", "norms_per_image")]
    if any(not isinstance(c, list) or len(c) < n for c in cols):
        return None
    clean, fooled = (torch.tensor([bool(v) for v in c[:n]]) for c in cols[:2])
    norms = torch.tensor([float("inf") if v is None else float(v) for v in cols[2][:n]])
    (acc,) = accuracy_at_thresholds(clean, fooled, norms, [threshold]).values()
    return {"value": round(acc["accuracy"], 6), "ci95": [round(c, 6) for c in acc["ci95"]], "n": n}


def margin_metrics(recs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """C&W with a confidence margin (the ``margin`` stage), by record key: kappa, n, the fraction
    not fooled and the accuracy at L2 0.5 with their 95% CIs, the median minimal norm, the
    fraction of images with an example, and the table's kappa-0 C&W accuracy at L2 0.5 on the
    same (first n) images when its record has the per-image lists."""
    out = {}
    kappa0 = recs.get("cw_l2")
    margin = [(k, r) for k, r in recs.items() if r.get("stage") == "margin"]
    for key, rec in sorted(margin, key=lambda kr: ((kr[1].get("params") or {}).get("kappa") or 0, kr[0])):
        at05 = (rec.get("accuracy_at") or {}).get("0.5") or {}
        norms = rec.get("norms") or {}
        r6 = lambda v: None if v is None else round(float(v), 6)  # noqa: E731
        out[key] = {"kappa": (rec.get("params") or {}).get("kappa"), "n": rec["n"],
                    "eot_samples": rec.get("effective_eot_samples"), "decision_samples": rec.get("decision_samples"),
                    "not_fooled": r6(rec["robust_accuracy"]),
                    "not_fooled_ci95": [r6(c) for c in rec["robust_accuracy_ci95"]],
                    "accuracy_at_0.5": r6(at05.get("accuracy")),
                    "accuracy_at_0.5_ci95": [r6(c) for c in at05["ci95"]] if at05.get("ci95") else None,
                    "median_norm": r6(norms.get("median")), "found_fraction": r6(norms.get("found_fraction"))}
        same = kappa0 is not None and kappa0.get("dataset") == rec.get("dataset") and \
            kappa0.get("split") == rec.get("split")
        out[key]["kappa0_accuracy_at_0.5_same_images"] = cw_accuracy_on_first(kappa0, rec["n"]) if same else None
    return out


def sweeps(recs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    fig3: dict[str, dict[str, float]] = {"fgsm": {}, "pgd20": {}}
    fig4: dict[str, dict[str, float]] = {"fgsm": {}, "pgd20": {}, "cw_l2": {}}
    for key, rec in recs.items():
        if rec.get("stage") == "fig3":
            kind = "fgsm" if key.startswith("fgsm") else "pgd20"
            fig3[kind][key.split("_")[2]] = rec["robust_accuracy"]
        elif rec.get("stage") == "fig4":
            kind = "fgsm" if key.startswith("fgsm") else "pgd20" if key.startswith("pgd20") else "cw_l2"
            k = key.rsplit("_eot", 1)[1]
            if kind == "cw_l2":
                entry = rec.get("accuracy_at", {}).get("0.5")
                fig4[kind][k] = entry["accuracy"] if entry else None
            else:
                fig4[kind][k] = rec["robust_accuracy"]
    srt = lambda d: dict(sorted(d.items(), key=lambda kv: float(kv[0])))  # noqa: E731
    return {"fig3_accuracy_vs_linf_eps_255": {k: srt(v) for k, v in fig3.items()},
            "fig4_accuracy_vs_eot_samples": {k: srt(v) for k, v in fig4.items()},
            "fig5_cw_norms": _fig5_norms(recs.get("cw_l2") or {})}


def _fig5_norms(rec: dict[str, Any]) -> list[float | None] | None:
    """C&W minimal norms for Figure 5: of the images whose decision the example fooled when the
    record says which (``fooled_per_image``), else of every example found (older records)."""
    norms, fooled = rec.get("norms_per_image"), rec.get("fooled_per_image")
    if norms is None or fooled is None:
        return norms
    return [v for v, f in zip(norms, fooled) if f]


def load_certificates(folder: Path = RESULTS) -> dict[str, dict[str, Any]]:
    """``certify_<model>.json`` records (``python -m ratzoo.certify``), by model name."""
    out = {}
    for path in sorted(folder.glob("certify_*.json")):
        rec = json.loads(path.read_text())
        if rec.get("kind") == "certify":
            out[path.stem.split("_", 1)[1]] = rec
    return out


def load_benchmarks(folder: Path = BENCHMARKS) -> dict[str, dict[str, Any]]:
    """``<model>_<threat>.json`` records of ``python -m ratzoo.benchmark`` (``train/benchmark_zoo.sh``),
    by file stem, e.g. ``rat_Linf``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*_*.json"))}


def certified_summary(rec: dict[str, Any]) -> dict[str, Any]:
    """What results.json keeps of a certification record (not the per-image list)."""
    lip = rec.get("lipschitz") or {}
    params = rec.get("params", {})
    return {"n": rec["n"], "complete": rec.get("complete"), "draws": params.get("n"), "n0": params.get("n0"),
            "alpha": params.get("alpha"), "sigma_min": rec["noise"]["sigma_min"], "noise_layer": rec["noise"]["layer"],
            "lipschitz": lip.get("value"), "accuracy_at": rec["certified_accuracy"],
            "ci95": rec.get("certified_accuracy_ci95"), "ci_method": rec.get("ci_method"),
            "abstain_rate": rec.get("abstain_rate"), "seconds_per_image": rec.get("seconds_per_image"),
            "threads": rec.get("threads"), "command": rec.get("command"),
            "median_radius_correct": _median_or_none([r["radius"] for r in rec.get("images", []) if r.get("correct")]),
            "radius_ceiling": radius_ceiling(rec["noise"]["sigma_min"], lip.get("value"), params.get("n"),
                                             params.get("alpha"))}


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def radius_ceiling(sigma: float, lipschitz: float | None, n: int | None, alpha: float | None) -> float | None:
    """The largest radius CERTIFY can return with n draws: every draw votes for the top class,
    so pA is the Clopper-Pearson lower bound of n successes in n, alpha^(1/n), and
    r = sigma * Phi^-1(pA) / L."""
    if not n or not alpha:
        return None
    from ratzoo.certify import binomial_lower_bound

    return sigma * statistics.NormalDist().inv_cdf(binomial_lower_bound(n, n, alpha)) / (lipschitz or 1.0)


def certified_metrics(cert: dict[str, Any]) -> list[dict[str, Any]]:
    """Certified accuracies as card metrics (type ``certified_accuracy``)."""
    out = []
    for r, acc in cert["accuracy_at"].items():
        ci = (cert.get("ci95") or {}).get(r)
        out.append({"name": f"certified accuracy at L2 {r}", "type": "certified_accuracy",
                    "value": round(float(acc), 6), "n": cert["n"], "ci95": [round(c, 6) for c in ci] if ci else None,
                    "draws": cert["draws"], "alpha": cert["alpha"], "record": "certify"})
    return out


def elapsed_minutes(recs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Minutes the records of one model took, per stage (their ``elapsed_s``)."""
    out: dict[str, float] = {}
    for rec in recs.values():
        if rec.get("note"):  # copied from another record, not measured
            continue
        stage = rec.get("stage", "table")
        out[stage] = out.get(stage, 0.0) + float(rec.get("elapsed_s") or 0.0) / 60
    return {k: round(v, 1) for k, v in sorted(out.items())}


def build_results(records: dict[str, dict[str, dict[str, Any]]],
                  certificates: dict[str, dict[str, Any]] | None = None,
                  benchmarks: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    certificates = certificates or {}
    models = {}
    for name in MODELS:
        if name not in records and name not in certificates:
            continue
        recs = records.get(name, {})
        any_rec = next(iter(recs.values()), certificates.get(name, {}))
        models[name] = {"table": table_metrics(recs) + benchmark_metrics(name, benchmarks or {}), **sweeps(recs),
                        "randomized": any_rec.get("randomized", True if name in certificates else None), "model_config": any_rec.get("model_config"),
                        "elapsed_minutes": elapsed_minutes(recs)}
        margin = margin_metrics(recs)
        if margin:
            models[name]["cw_margin"] = margin
        if name in certificates:
            models[name]["certified"] = certified_summary(certificates[name])
    any_rec = next((r for m in records.values() for r in m.values()), {})
    return {
        "description": "the bundled zoo measured by python -m train.experiments (ratzoo.evaluate)",
        "dataset": any_rec.get("dataset", "CIFAR-10"),
        "split": "test",
        "decision_rule": any_rec.get("decision_rule"),
        "models": models,
        "paired": paired_comparisons(records, benchmarks or {}),
    }


def fmt_metric(m: dict[str, Any]) -> str:
    """How a metric is written in the README table (the test parses this back)."""
    if m.get("unit") == "L2":
        return f"{m['value']:.2f}"
    return f"{100 * m['value']:.1f}"


def _cell(by: dict[str, dict[str, Any]], name: str) -> str:
    """A metric as the README writes it, or "-" when it was not measured."""
    return fmt_metric(by[name]) if name in by else "-"


def readme_table(results: dict[str, Any]) -> str:
    names, short = zip(*TABLE_COLUMNS)
    lines = ["| model | " + " | ".join(short) + " |", "| --- " * (len(short) + 1) + "|"]
    ns: dict[str, set[int]] = {}
    for model, res in results["models"].items():
        by = {m["name"]: m for m in res["table"]}
        cells = [_cell(by, n) for n in names]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
        for m in res["table"]:
            ns.setdefault(m["name"], set()).add(m["n"])
    lines.append("| *images (n)* | " + " | ".join("/".join(map(str, sorted(ns.get(n, ())))) or "-" for n in names) + " |")
    return "\n".join(lines)


def paper_table(results: dict[str, Any]) -> str:
    """Our zoo against the paper's Table 2, cell by cell (the test parses this back)."""
    lines = ["| model | paper: Linf | ours: Linf, same setting | paper: L2 (C&W) | ours: C&W not fooled "
             "| ours: PGD-20 Linf 8/255 | ours: C&W acc. at L2 0.5 |", "| --- " * 7 + "|"]
    for model, res in results["models"].items():
        by = {m["name"]: m for m in res["table"]}
        paper = PAPER_TABLE2.get(model)
        cells = [f"{100 * paper[0]:.1f}" if paper else "-",
                 _cell(by, PAPER_LINF_NAME),
                 f"{100 * paper[1]:.1f}" if paper else "-",
                 _cell(by, CW_NOT_FOOLED_NAME), _cell(by, "PGD-20 Linf 8/255"), _cell(by, CW_AT_05)]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
    ns = {name: sorted({m["n"] for r in results["models"].values() for m in r["table"] if m["name"] == name})
          for name in (PAPER_LINF_NAME, CW_NOT_FOOLED_NAME, "PGD-20 Linf 8/255", CW_AT_05)}
    lines.append("| *images (n)* | not stated | " + " | ".join(
        ["/".join(map(str, ns[PAPER_LINF_NAME])) or "-", "not stated", "/".join(map(str, ns[CW_NOT_FOOLED_NAME])) or "-",
         "/".join(map(str, ns["PGD-20 Linf 8/255"])) or "-", "/".join(map(str, ns[CW_AT_05])) or "-"])
        + " |")
    return "\n".join(lines)


FIND_START, FIND_END = "<!-- findings:start -->", "<!-- findings:end -->"
# The paper's comparative claims, checked on the zoo: (claim, Table 2 column, metric, a, b,
# relation, note). relation ">": a is more robust than b; ">=": a is at least as robust as b.
# The paper's evidence is read from PAPER_TABLE2's column (0: Linf, 1: L2 = C&W).
LINF, L2 = 0, 1
CLAIMS = [
    ("RAT is at least as robust as AT against Linf attacks", LINF, "PGD-20 Linf 8/255", "rat", "at", ">=", ""),
    ("RAT is at least as robust as AT against Linf attacks (our stronger APGD-CE check)", LINF,
     "APGD-CE Linf 8/255", "rat", "at", ">=", ""),
    ("RAT is more robust than AT against L2 attacks", L2, CW_AT_05, "rat", "at", ">", ""),
    ("RAT is more robust than AT against L2 attacks (PGD-L2)", L2, PGD_L2_05, "rat", "at", ">", ""),
    ("RAT is at least as robust as R.N. against L2 attacks", L2, CW_AT_05, "rat", "rn", ">=", ""),
    ("RAT is at least as robust as R.N. against L2 attacks (PGD-L2)", L2, PGD_L2_05, "rat", "rn", ">=", ""),
    ("R.N. is more robust than AT against L2 attacks", L2, CW_AT_05, "rn", "at", ">", ""),
    ("R.N. is more robust than AT against L2 attacks (PGD-L2)", L2, PGD_L2_05, "rn", "at", ">", ""),
    ("AT is more robust than R.N. against Linf attacks", LINF, "PGD-20 Linf 8/255", "at", "rn", ">", ""),
    ("RAT is more robust than LeRAT against L2 attacks", L2, CW_AT_05, "rat", "lerat", ">", ""),
    ("RAT is more robust than LeRAT against L2 attacks (PGD-L2)", L2, PGD_L2_05, "rat", "lerat", ">", ""),
    ("LeRAT is at least as robust as RAT against Linf attacks", LINF, "PGD-20 Linf 8/255", "lerat", "rat", ">=",
     "; Figure 4"),
]


def _paper_claims() -> list[tuple[str, int, str, str, str, str]]:
    """Each claim of the paper once: (claim, column, a, b, relation, note), from ``CLAIMS``."""
    seen: dict[tuple[int, str, str, str], tuple[str, int, str, str, str, str]] = {}
    for claim, column, _, a, b, rel, note in CLAIMS:
        seen.setdefault((column, a, b, rel), (claim, column, a, b, rel, note))
    return list(seen.values())


PAPER_CLAIMS = _paper_claims()
BENCHMARK_THREAT = {LINF: "Linf", L2: "L2"}  # the paper's Table 2 column -> the leaderboard's threat model


def benchmark_source(column: int) -> str:
    """The ``source`` of a paired comparison of two benchmark records, e.g. ``"benchmark Linf"``."""
    return f"benchmark {BENCHMARK_THREAT[column]}"


def paired(ra: dict[str, Any], rb: dict[str, Any]) -> dict[str, Any] | None:
    """``ratzoo.compare`` of two records as results.json keeps it (with each side's Wilson
    interval on the shared images), or None when a record has no per-image outcomes."""
    try:
        c = compare(Record.from_json(ra), Record.from_json(rb))
    except ValueError:
        return None  # measured before ratzoo kept per-image outcomes: the intervals decide
    return {"n": c.n, "both": c.both, "only_a": c.only_a, "only_b": c.only_b, "neither": c.neither,
            "accuracy_a": c.accuracy_a, "accuracy_a_ci95": list(wilson_interval(c.both + c.only_a, c.n)),
            "accuracy_b": c.accuracy_b, "accuracy_b_ci95": list(wilson_interval(c.both + c.only_b, c.n)),
            "difference": c.difference, "difference_ci95": list(c.difference_ci95), "p_value": c.p_value}


def paired_comparisons(records: dict[str, dict[str, dict[str, Any]]],
                       benchmarks: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The exact paired test (McNemar) behind each claim wherever both records have per-image
    outcomes: under the benchmark (``source`` "benchmark") and under the table's metrics."""
    key_of = {name: key for key, name, _ in TABLE}
    out = []
    for _, column, a, b, _, _ in PAPER_CLAIMS:
        suffix = BENCHMARK_THREAT[column]
        ra, rb = benchmarks.get(f"{a}_{suffix}"), benchmarks.get(f"{b}_{suffix}")
        if ra is not None and rb is not None and (c := paired(ra, rb)) is not None:
            out.append({"source": benchmark_source(column), "a": a, "b": b, **c})
    for _, _, metric, a, b, _, _ in CLAIMS:
        key = key_of.get(metric)
        ra, rb = records.get(a, {}).get(key), records.get(b, {}).get(key)
        if key and ra is not None and rb is not None and (c := paired(ra, rb)) is not None:
            out.append({"source": metric, "a": a, "b": b, **c})
    return out


def _paired_of(results: dict[str, Any], source: str, a: str, b: str) -> dict[str, Any] | None:
    return next((c for c in results.get("paired") or [] if (c["source"], c["a"], c["b"]) == (source, a, b)), None)


def paired_verdict(c: dict[str, Any], relation: str, alpha: float = 0.05) -> str:
    """The claim's verdict from the exact paired test: a difference counts when McNemar's
    p-value is below ``alpha``."""
    if c["p_value"] < alpha:
        return "agrees" if c["difference"] > 0 else "contradicts"
    return "agrees (no clear difference)" if relation == ">=" else "not resolved (no clear paired difference)"


def _paired_text(c: dict[str, Any], a: str, b: str) -> str:
    pct = lambda v: f"{100 * v:.1f}"  # noqa: E731
    lo, hi = c["difference_ci95"]
    return (f"{LABELS[a]} {pct(c['accuracy_a'])} [{pct(c['accuracy_a_ci95'][0])}, {pct(c['accuracy_a_ci95'][1])}] vs "
            f"{LABELS[b]} {pct(c['accuracy_b'])} [{pct(c['accuracy_b_ci95'][0])}, {pct(c['accuracy_b_ci95'][1])}] "
            f"on the same {c['n']} images; paired: {c['only_a']} images robust only for {LABELS[a]}, {c['only_b']} "
            f"only for {LABELS[b]}, difference {100 * c['difference']:+.1f} points [{100 * lo:+.1f}, {100 * hi:+.1f}], "
            f"exact McNemar p={c['p_value']:.2g}")


def _evidence(column: int, a: str, b: str, note: str) -> str:
    """The paper's numbers behind a claim, e.g. "Table 2 (C&W): 49.9 vs 5.6"."""
    return (f"Table 2{' (C&W)' if column == L2 else ''}: {100 * PAPER_TABLE2[a][column]:.1f} vs "
            f"{100 * PAPER_TABLE2[b][column]:.1f}{note}")


def _ci_of(results: dict[str, Any], model: str, metric: str) -> dict[str, Any] | None:
    res = results["models"].get(model)
    if res is None:
        return None
    return next((m for m in res["table"] if m["name"] == metric and m.get("ci95")), None)


def verdict(a: dict[str, Any], b: dict[str, Any], relation: str) -> str:
    """``agrees`` / ``contradicts`` / ``not resolved`` from the two 95% confidence intervals
    (separated intervals = a clear difference; overlapping = not resolved at this n)."""
    a_lo, a_hi = a["ci95"]
    b_lo, b_hi = b["ci95"]
    if a_hi < b_lo:
        return "contradicts"
    if a_lo > b_hi:
        return "agrees"
    return "agrees (no clear difference)" if relation == ">=" else "not resolved (95% CIs overlap)"


def _ci_text(m: dict[str, Any]) -> str:
    return f"{100 * m['value']:.1f} [{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}] (n={m['n']})"


def cw_weaker_than_pgd(results: dict[str, Any], model: str) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """(C&W, PGD-L2) metrics at L2 0.5 when C&W leaves clearly MORE accuracy than PGD-L2 at the
    same budget (separated 95% CIs), else None. Robust accuracy is the minimum over attacks, so
    a C&W number that a bounded PGD beats is no evidence of robustness (Carlini et al. 2019)."""
    cw, pgd = _ci_of(results, model, CW_AT_05), _ci_of(results, model, PGD_L2_05)
    if cw is None or pgd is None or cw["ci95"][0] <= pgd["ci95"][1]:
        return None
    return cw, pgd


def findings(results: dict[str, Any]) -> str:
    """The paper's claims checked on the zoo, one line each (generated: never typed by hand)."""
    lines = []
    for claim, column, a, b, rel, note in PAPER_CLAIMS:
        evidence = _evidence(column, a, b, note)
        c = _paired_of(results, benchmark_source(column), a, b)
        if c is None:
            lines.append(f"- *{claim}, under the benchmark* (paper, {evidence}): not measured yet "
                         "(`bash train/benchmark_zoo.sh`).")
            continue
        lines.append(f"- *{claim}, under the benchmark* (paper, {evidence}): **{paired_verdict(c, rel)}**. "
                     f"APGD-CE + APGD-T, {BENCHMARK_WORDS[BENCHMARK_THREAT[column]]}: {_paired_text(c, a, b)}.")
    for claim, column, metric, a, b, rel, note in CLAIMS:
        evidence = _evidence(column, a, b, note)
        ma, mb = _ci_of(results, a, metric), _ci_of(results, b, metric)
        if ma is None or mb is None:
            lines.append(f"- *{claim}* ({evidence}): not measured yet ({metric}).")
            continue
        c = _paired_of(results, metric, a, b)
        if c is not None:
            lines.append(f"- *{claim}* (paper, {evidence}): **{paired_verdict(c, rel)}**. {metric_label(ma)}: "
                         f"{_paired_text(c, a, b)}.")
            continue
        v = verdict(ma, mb, rel)
        weak = [LABELS[m] for m in (a, b) if metric == CW_AT_05 and cw_weaker_than_pgd(results, m)]
        caveat = (f" **Not evidence:** on {' and '.join(weak)} C&W is clearly weaker than PGD-20 L2 at the same "
                  "budget (see below), so this C&W comparison says nothing about robustness." if weak else "")
        lines.append(
            f"- *{claim}* (paper, {evidence}): **{v}**. {metric_label(ma)}: {LABELS[a]} {_ci_text(ma)} vs {LABELS[b]} "
            f"{_ci_text(mb)}.{caveat}")
    for model in results["models"]:
        pair = cw_weaker_than_pgd(results, model)
        if pair is not None:
            cw, pgd = pair
            lines.append(
                f"- *C&W-L2 measures {LABELS.get(model, model)}'s L2 robustness* (the paper's L2 column is C&W): "
                f"**contradicts**: at L2 0.5 C&W leaves {_ci_text(cw)} but PGD-20 L2 leaves {_ci_text(pgd)}. "
                "C&W's minimal-norm examples sit on the decision boundary of the attack's own noise estimate, "
                "and fresh draws undo many of them.")
    for model, res in results["models"].items():
        pgd = _ci_of(results, model, PGD_L2_05)
        kappa0 = _ci_of(results, model, CW_AT_05)
        parts = []
        for m in (res.get("cw_margin") or {}).values():
            if pgd is None or not m.get("accuracy_at_0.5_ci95"):
                continue
            cw = {"value": m["accuracy_at_0.5"], "ci95": m["accuracy_at_0.5_ci95"], "n": m["n"]}
            v = ("still clearly weaker than PGD-20 L2" if cw["ci95"][0] > pgd["ci95"][1] else
                 "clearly stronger than PGD-20 L2" if cw["ci95"][1] < pgd["ci95"][0] else
                 "no clear difference from PGD-20 L2")
            parts.append(f"kappa {m['kappa']:g} leaves {_ci_text(cw)}, **{v}** (not fooled at any norm "
                         f"{100 * m['not_fooled']:.1f}%, median minimal norm {m['median_norm']:.2f})")
        if parts:
            same = [m.get("kappa0_accuracy_at_0.5_same_images") for m in res["cw_margin"].values()]
            if same and all(s is not None and s["n"] == same[0]["n"] for s in same):
                before = f"kappa 0 (the table's record) left {_ci_text(same[0])} on the same first images; "
            else:
                before = f"kappa 0 (the table's) left {_ci_text(kappa0)}; " if kappa0 is not None else ""
            lines.append(
                f"- *C&W-L2 with a margin on {LABELS.get(model, model)}* (not in the paper): at L2 0.5, {before}"
                + "; ".join(parts) + f"; PGD-20 L2 leaves {_ci_text(pgd)}.")
    for model, res in results["models"].items():
        by = {m["name"]: m for m in res["table"]}
        for bench_name, singles in BENCHMARK_METRICS.values():
            bench, single = by.get(bench_name), [by[n] for n in singles if n in by]
            if bench is None or not single:
                continue
            best = min(single, key=lambda m: m["value"])
            d = 100 * (bench["value"] - best["value"])
            how = (f"overstates {LABELS.get(model, model)} by {-d:.1f} points" if d < 0 else
                   f"does not overstate {LABELS.get(model, model)} (the benchmark is {d:.1f} points above it)")
            lines.append(f"- *The table's strongest single attack at {bench_name.split(' ', 1)[1]}* {how}: "
                         f"{metric_label(best)} {_ci_text(best)}; the benchmark {_ci_text(bench)}"
                         + "".join(f"; {metric_label(m)} {100 * m['value']:.1f}" for m in single if m is not best)
                         + ".")
    for model, (paper_linf, _) in PAPER_TABLE2.items():
        m = _ci_of(results, model, PAPER_LINF_NAME)
        if m is None:
            continue
        v = "contradicts" if m["ci95"][1] < paper_linf else "agrees" if m["ci95"][0] <= paper_linf else "exceeds"
        lines.append(f"- *{LABELS[model]} keeps {100 * paper_linf:.1f}% under the paper's own Linf attack* "
                     f"(Table 2; PGD-10, eps 0.3 on [-1, 1], EOT-50): **{v}**: ours keeps {100 * m['value']:.1f} "
                     f"[{100 * m['ci95'][0]:.1f}, {100 * m['ci95'][1]:.1f}] (n={m['n']}).")
    return "\n".join(lines)


def certify_table(results: dict[str, Any]) -> str:
    """Certified accuracy per radius next to the empirical L2 robust accuracy."""
    certs = {m: r["certified"] for m, r in results["models"].items() if r.get("certified")}
    if not certs:
        return "*No certificates yet: run `python -m ratzoo.certify` (command below).*"
    radii = sorted({r for c in certs.values() for r in c["accuracy_at"]}, key=float)
    head = ["model", "sigma", "L", "max radius", *[f"cert. @{r}" for r in radii], "PGD-20 L2 0.5 (empirical)",
            "C&W acc. at L2 0.5", "n", "draws", "s/image"]
    lines = ["| " + " | ".join(head) + " |", "| --- " * len(head) + "|"]
    for model, c in certs.items():
        by = {m["name"]: m for m in results["models"][model]["table"]}
        cells = [f"{c['sigma_min']:.3g}", f"{c['lipschitz']:.1f}" if c.get("lipschitz") else "1 (input)",
                 f"{c['radius_ceiling']:.3f}" if c.get("radius_ceiling") is not None else "-",
                 *[f"{100 * c['accuracy_at'][r]:.1f}" if r in c["accuracy_at"] else "-" for r in radii],
                 _cell(by, PGD_L2_05), _cell(by, CW_AT_05),
                 str(c["n"]), str(c["draws"]),
                 f"{c['seconds_per_image']:.1f}" if c.get("seconds_per_image") is not None else "-"]
        lines.append(f"| {LABELS.get(model, model)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


NOTES_START, NOTES_END = "<!-- zoo-notes:start -->", "<!-- zoo-notes:end -->"
COMMANDS_START, COMMANDS_END = "<!-- zoo-commands:start -->", "<!-- zoo-commands:end -->"
FIG2_START, FIG2_END = "<!-- figure2:start -->", "<!-- figure2:end -->"
DOCS = REPO_ROOT / "docs"


def zoo_caption(results: dict[str, Any]) -> str:
    eots = sorted({m.get("eot_samples") for r in results["models"].values() if r.get("randomized")
                   for m in r["table"] if m.get("eot_samples")})
    eot_text = (f"noisy models are attacked with EOT-{'/'.join(map(str, eots))} and " if eots else "")
    its = _iterations()
    its_text = (f" APGD-CE: {'/'.join(map(str, its['apgd']))} iterations; C&W: "
                f"{'/'.join(map(str, its['cw']))} Adam iterations x {'/'.join(map(str, its['search']))} "
                "binary-search steps." if its["apgd"] and its["cw"] else "")
    return (f"Accuracies in %, measured on {results['dataset']} test images (the first n of the test split) by "
            f"`python -m train.experiments`; {eot_text}an example counts as robust when the EOT prediction over "
            f"{DEFAULT_DECISION_SAMPLES} fresh draws is the true label. C&W columns: accuracy at an L2 threshold (minimal adversarial norm "
            "above it, or not fooled) and the median minimal norm, an L2 distance (not a percentage)." + its_text)


def _iterations() -> dict[str, list[int]]:
    """The iterations the table's APGD-CE and C&W records ran, read from the records themselves."""
    out: dict[str, set[int]] = {"apgd": set(), "cw": set(), "search": set()}
    for model, recs in load_records().items():
        if "apgd_ce_linf_8" in recs:
            out["apgd"].add(int(recs["apgd_ce_linf_8"]["params"]["steps"]))
        if "cw_l2" in recs:
            out["cw"].add(int(recs["cw_l2"]["params"]["steps"]))
            out["search"].add(int(recs["cw_l2"]["params"]["search_steps"]))
    return {k: sorted(v) for k, v in out.items()}


def zoo_notes(results: dict[str, Any]) -> str:
    """The measuring time per model (the records' elapsed times) and where the intervals are."""
    minutes = {m: sum(r.get("elapsed_minutes", {}).values()) for m, r in results["models"].items()}
    body = ("95% confidence intervals are in `checkpoints/results/results.json` and in each model card.")
    if minutes:
        total = sum(minutes.values())
        body += ("\n\nMeasuring took (minutes of one CPU core, the records' elapsed times, all stages): "
                 + ", ".join(f"{LABELS.get(m, m)} {v:.0f}" for m, v in minutes.items())
                 + f"; {total:.0f} in all (about {total / 60:.0f} core-hours).")
    return body


def zoo_commands() -> str:
    """The exact training command of each bundled checkpoint (from its config.json)."""
    commands = []
    for model in MODELS:
        cfg_path = REPO_ROOT / "checkpoints" / model / "config.json"
        if cfg_path.is_file():
            cfg = json.loads(cfg_path.read_text())
            last = cfg.get("training", {}).get("final_epoch_log", {})
            commands.append(f"# {model}: {cfg.get('training', {}).get('epochs_completed')} epochs, "
                            f"{last.get('images_per_second', '?')} images/s in its last epoch\n"
                            + cfg.get("training", {}).get("command", "?"))
    if not commands:
        return "No bundled checkpoint yet."
    return ("Each checkpoint was produced by exactly this command (also in its `config.json`), "
            "on a 2-core CPU:\n\n```bash\n" + "\n".join(commands) + "\n```")


FIG2_RATIOS = (0, 3, 6, 9, 12)  # columns of the Figure 2 table: positions in ratzoo.geometry.figure2_radii


def figure2_block(folder: Path = RESULTS / "records") -> str:
    """The paper's Figure 2 on the zoo as tables (one per Linf radius) and whether its reading holds.

    Read from the C&W records by :func:`ratzoo.figure2`, the same rows the demo's results tab draws."""
    fig2 = figure2(Record.load_folder(folder)[0].values(), LABELS)
    rows, missing = fig2.rows, fig2.missing
    if not rows:
        return "No C&W record with per-image Linf norms yet (`python -m train.experiments --stages table,fig2`)."
    out = []
    for eps_name in FIGURE2_EPS:
        sub = [r for r in rows if r["Linf radius"] == eps_name]
        ratios = sorted({r["L2 radius / Linf radius"] for r in sub})
        cols = [ratios[i] for i in FIG2_RATIOS if i < len(ratios)]
        out.append(f"**Linf radius {eps_name}.** Share (%) of the C&W examples that fooled the model: inside the "
                   "Linf ball, then in the cap (outside the Linf ball, inside the L2 ball) as the L2 radius grows "
                   "from the Linf radius to the Linf radius x sqrt(d), d = 3072.\n")
        out.append("| model | images (n) | examples | inside the Linf ball | "
                   + " | ".join(f"cap, L2 {c:g}x" for c in cols) + f" | beyond, L2 {cols[-1]:g}x |")
        out.append("| --- " * (len(cols) + 5) + "|")
        for model in LABELS.values():
            pts = [r for r in sub if r["model"] == model]
            if not pts:
                continue
            get = {(r["L2 radius / Linf radius"], r["region"]): r["share (%)"] for r in pts}
            inside = get[(cols[0], REGION_WORDS["inside"])]
            out.append(f"| {model} | {pts[0]['images']} | {pts[0]['examples']} | {inside:.1f} | "
                       + " | ".join(f"{get[(c, REGION_WORDS['cap'])]:.1f}" for c in cols)
                       + f" | {get[(cols[-1], REGION_WORDS['beyond'])]:.1f} |")
        out.append("")
    if fig2.reading:
        out.append(fig2.reading)
    if missing:
        out.append(f"\nNot measured with per-image Linf norms yet: {', '.join(missing)}.")
    return "\n".join(out).strip()


def write_readme(results: dict[str, Any], readme: Path = REPO_ROOT / "README.md",
                 docs: Path | None = None) -> list[Path]:
    """Fill every generated block in ``readme`` and, with ``docs``, in ``docs/*.md``; returns
    the files changed. The zoo table must be in ``readme``; any other block is filled where it is."""
    files = [readme, *(sorted(docs.glob("*.md")) if docs is not None and docs.is_dir() else [])]
    if MARK_START not in readme.read_text() or MARK_END not in readme.read_text():
        raise SystemExit(f"{readme}: zoo-table markers missing")
    blocks = [
        (MARK_START, MARK_END, lambda: zoo_caption(results) + "\n\n" + readme_table(results)),
        (NOTES_START, NOTES_END, lambda: zoo_notes(results)),
        (COMMANDS_START, COMMANDS_END, zoo_commands),
        (PAPER_START, PAPER_END, lambda: paper_table(results)),
        (CERT_START, CERT_END, lambda: certify_table(results)),
        (FIND_START, FIND_END, lambda: findings(results)),
        (FIG2_START, FIG2_END, figure2_block),
        (leaderboard.START, leaderboard.END, lambda: leaderboard.block(leaderboard.entries())),
    ]
    changed = []
    for path in files:
        text = original = path.read_text()
        for start, end, body in blocks:
            if start in text:
                text = replace_block(text, start, end, body(), path)
        if text != original:
            path.write_text(text)
            changed.append(path)
    return changed


def _color(model: str) -> str:
    """One colour per zoo model in every figure (matplotlib's tab10, in zoo order)."""
    order = list(LABELS)
    return f"C{order.index(model) % 10}" if model in order else "0.4"


def plots(results: dict[str, Any], folder: Path = RESULTS) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), sharey=True)
    for ax, kind, title in zip(axes, ("fgsm", "pgd20"), ("FGSM", "PGD-20")):
        for model, res in results["models"].items():
            d = res["fig3_accuracy_vs_linf_eps_255"][kind]
            if d:
                ax.plot([float(k) for k in d], [100 * v for v in d.values()], marker="o", label=LABELS[model],
                        color=_color(model))
        ax.set(title=f"{title} (Linf)", xlabel="eps (/255)", xscale="log", xticks=[2, 4, 8, 16, 32])
        ax.set_xticklabels(["2", "4", "8", "16", "32"])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=8)
    fig.suptitle("Figure 3 on the zoo: accuracy vs Linf budget (EOT attacks)", fontsize=10)
    fig.tight_layout()
    paths.append(folder / "fig3_eps.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), sharey=True)
    for ax, kind, title in zip(axes, ("fgsm", "pgd20", "cw_l2"),
                               ("FGSM Linf 8/255", "PGD-20 Linf 8/255", "C&W-L2: accuracy at L2 0.5")):
        for model, res in results["models"].items():
            d = {k: v for k, v in res["fig4_accuracy_vs_eot_samples"][kind].items() if v is not None}
            if d:
                ax.plot([float(k) for k in d], [100 * v for v in d.values()], marker="o", label=LABELS[model],
                        color=_color(model))
        ax.set(title=title, xlabel="EOT samples", xscale="log", xticks=[1, 5, 10, 20, 50])
        ax.set_xticklabels(["1", "5", "10", "20", "50"])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy (%)")
    axes[2].legend(fontsize=8, loc="center left")  # the C&W panel is empty between AT and Standard
    fig.suptitle("Figure 4 on the zoo: accuracy vs number of EOT samples", fontsize=10)
    fig.tight_layout()
    paths.append(folder / "fig4_eot.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)

    paths += figure2_plot(folder)

    fig, ax = plt.subplots(figsize=(6, 3.4))
    data, labels = [], []
    for model, res in results["models"].items():
        norms = [v for v in (res.get("fig5_cw_norms") or []) if v is not None and v != float("inf") and v > 0]
        if norms:
            data.append(norms)
            labels.append(f"{LABELS[model]}\n({len(norms)} ex.)")
    if data:
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(labels) + 1), labels)
    ax.set(ylabel="L2 norm of C&W adversarial",
           title="Figure 5 on the zoo: norms of the C&W examples\nthat fool the decision rule")
    ax.title.set_fontsize(10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(folder / "fig5_cw_norms.png")
    fig.savefig(paths[-1], dpi=110)
    plt.close(fig)
    return paths


def figure2_plot(folder: Path = RESULTS) -> list[Path]:
    """``fig2_regions.png``: per model (rows) and Linf radius (columns), the stacked shares of
    C&W examples inside the Linf ball, in the L2 cap and beyond, against the L2 radius."""
    import matplotlib.pyplot as plt

    rows = figure2(Record.load_folder(folder / "records")[0].values(), LABELS).rows
    models = [m for m in LABELS.values() if any(r["model"] == m for r in rows)]
    if not models:
        return []
    eps_names = list(FIGURE2_EPS)
    fig, axes = plt.subplots(len(models), len(eps_names), figsize=(9, 1.7 * len(models) + 0.9), sharex=True,
                             sharey=True, squeeze=False)
    colors = {"inside": "#54a24b", "cap": "#f58518", "beyond": "#bbbbbb"}
    for i, model in enumerate(models):
        for j, eps_name in enumerate(eps_names):
            ax = axes[i][j]
            pts = [r for r in rows if r["model"] == model and r["Linf radius"] == eps_name]
            xs = sorted({r["L2 radius / Linf radius"] for r in pts})
            ys = [[next(r["share (%)"] for r in pts if r["L2 radius / Linf radius"] == x and r["region"] == words)
                   for x in xs] for words in REGION_WORDS.values()]
            ax.stackplot(xs, ys, colors=list(colors.values()), labels=list(REGION_WORDS.values()))
            ax.set(xscale="log", ylim=(0, 100))
            n = pts[0]["examples"]
            ax.set_title(f"{model}, Linf {eps_name.split(' (')[0]} ({n} ex. of {pts[0]['images']} images)", fontsize=8)
            if j == 0:
                ax.set_ylabel("share (%)", fontsize=8)
            if i == len(models) - 1:
                ax.set_xlabel("L2 radius / Linf radius", fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7, loc="lower left")
    fig.suptitle("Figure 2 on the zoo: where C&W-L2 examples lie (Linf ball, L2 cap, beyond)", fontsize=10)
    fig.tight_layout()
    path = folder / "fig2_regions.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


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
                                "source": "python -m train.experiments; python -m ratzoo.certify; python -m train.report",
                                "metrics": card_metrics(res)})
        done.append(model)
    return done


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--no-plots", action="store_true")
    p.add_argument("--no-cards", action="store_true")
    args = p.parse_args(argv)
    records = load_records()
    if not records:
        print(f"no records in {RESULTS / 'records'}; run python -m train.experiments first", file=sys.stderr)
        return 1
    results = build_results(records, load_certificates(), load_benchmarks())
    (RESULTS / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    for path in write_readme(results, docs=DOCS):
        print(f"wrote {path.relative_to(REPO_ROOT)}", file=sys.stderr)
    if not args.no_plots:
        for path in plots(results):
            print(f"wrote {path}", file=sys.stderr)
    if not args.no_cards:
        print(f"updated cards: {update_cards(results)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
