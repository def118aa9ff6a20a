"""The numbers of ``python -m train.report``: the records read and turned into ``results.json``.

Reads ``checkpoints/results/records/*.json`` (``python -m train.experiments``), the
certificates ``certify_<model>.json`` (``python -m ratzoo certify``) and the benchmark records
``benchmark/<model>_<threat>.json`` (``train/benchmark_zoo.sh``); gives each model's table
metrics, the paper's Figures 3-5 data, C&W with a margin, the certified accuracies, and the
exact paired test behind each of the paper's claims (:data:`CLAIMS`).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

import torch

from ratzoo import zoo
from ratzoo.benchmarking import THREAT_MODELS
from ratzoo.evaluation import accuracy_at_thresholds
from ratzoo.leaderboard import eps_text
from ratzoo.record import CertifyRecord, Record, compare
from ratzoo.stats import wilson_interval

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
PAPER_LINF_NAME = "PGD-10 Linf 0.15 (paper's Table 2 setting)"
CW_NOT_FOOLED_NAME = "C&W-L2 not fooled (unbounded)"
CW_AT_05, PGD_L2_05 = "C&W-L2 accuracy at L2 0.5", "PGD-20 L2 0.5"  # the L2 0.5 metrics compared
# the leaderboard's threat models, in words ("Linf 8/255", "L2 0.5"), and per threat model
# (= benchmark record suffix): (metric name, the table's single attacks at the same budget)
BENCHMARK_WORDS = {t: f"{t} {eps_text(t, eps)}" for t, eps in THREAT_MODELS.items()}
BENCHMARK_METRICS = {"Linf": (f"Benchmark {BENCHMARK_WORDS['Linf']}", ("PGD-20 Linf 8/255", "APGD-CE Linf 8/255")),
                     "L2": (f"Benchmark {BENCHMARK_WORDS['L2']}", (PGD_L2_05,))}


def load_records(folder: Path = RESULTS / "records") -> dict[str, dict[str, dict[str, Any]]]:
    """The experiment records ``<model>__<key>.json`` as JSON, by model and key."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(folder.glob("*__*.json")):
        model, key = path.stem.split("__", 1)
        out.setdefault(model, {})[key] = json.loads(path.read_text())
    return out


def load_certificates(folder: Path = RESULTS) -> dict[str, CertifyRecord]:
    """``certify_<model>.json`` records (``python -m ratzoo certify``), by model name."""
    out = {}
    for path in sorted(folder.glob("certify_*.json")):
        rec = json.loads(path.read_text())
        if rec.get("kind") == CertifyRecord.KIND:
            out[path.stem.split("_", 1)[1]] = CertifyRecord.from_json(rec)
    return out


def load_benchmarks(folder: Path = BENCHMARKS) -> dict[str, dict[str, Any]]:
    """``<model>_<threat>.json`` records of ``python -m ratzoo benchmark`` (``train/benchmark_zoo.sh``),
    by file stem, e.g. ``rat_Linf``."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*_*.json"))}


def _metric(name: str, typ: str, value: float, rec: dict[str, Any], ci: list[float] | None) -> dict[str, Any]:
    eot = rec.get("effective_eot_samples")
    out = {"name": name, "type": typ, "value": round(float(value), 6), "n": rec["n"],
           "ci95": [round(c, 6) for c in ci] if ci else None,
           "eot_samples": eot, "decision_samples": rec.get("decision_samples"), "record": rec.get("key")}
    steps = (rec.get("params") or {}).get("steps")
    if steps is not None:
        out["steps"] = int(steps)  # every published number states its iterations
    return out


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
    its per-image lists by the evaluator's own rule (``ratzoo.evaluation.accuracy_at_thresholds``);
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


def certified_summary(rec: CertifyRecord) -> dict[str, Any]:
    """What results.json keeps of a certification record (not the per-image list)."""
    lip = rec.lipschitz or {}
    params = rec.params
    return {"n": rec.n, "complete": rec.complete, "draws": params.get("n"), "n0": params.get("n0"),
            "alpha": params.get("alpha"), "sigma_min": rec.noise["sigma_min"], "noise_layer": rec.noise["layer"],
            "lipschitz": lip.get("value"), "accuracy_at": rec.certified_accuracy,
            "ci95": rec.certified_accuracy_ci95, "ci_method": rec.ci_method,
            "abstain_rate": rec.abstain_rate, "seconds_per_image": rec.seconds_per_image,
            "threads": rec.threads, "command": rec.command,
            "median_radius_correct": _median_or_none([r["radius"] for r in rec.images if r.get("correct")]),
            "radius_ceiling": radius_ceiling(rec.noise["sigma_min"], lip.get("value"), params.get("n"),
                                             params.get("alpha"))}


def _median_or_none(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def radius_ceiling(sigma: float, lipschitz: float | None, n: int | None, alpha: float | None) -> float | None:
    """The largest radius CERTIFY can return with n draws: every draw votes for the top class,
    so pA is the Clopper-Pearson lower bound of n successes in n, alpha^(1/n), and
    r = sigma * Phi^-1(pA) / L."""
    if not n or not alpha:
        return None
    from ratzoo.stats import binomial_lower_bound

    return sigma * statistics.NormalDist().inv_cdf(binomial_lower_bound(n, n, alpha)) / (lipschitz or 1.0)


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
                  certificates: dict[str, CertifyRecord] | None = None,
                  benchmarks: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    certificates = certificates or {}
    models = {}
    for name in MODELS:
        if name not in records and name not in certificates:
            continue
        recs = records.get(name, {})
        any_rec = next(iter(recs.values()), None)
        if any_rec is None:  # certified before any attack was measured
            any_rec = certificates[name].to_json()
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
