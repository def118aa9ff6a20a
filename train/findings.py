"""The findings block: the paper's claims (:data:`train.metrics.CLAIMS`) checked on the zoo, in
words, from ``results.json``: by the exact paired test where both records have per-image
outcomes, else by the two 95% confidence intervals."""

from __future__ import annotations

from typing import Any

from ratzoo.zoo import PAPER_TABLE2  # (Linf, L2) robust accuracy per method
from train.metrics import (BENCHMARK_METRICS, BENCHMARK_THREAT, BENCHMARK_WORDS, CLAIMS, CW_AT_05, L2, LABELS,
                           PAPER_CLAIMS, PAPER_LINF_NAME, PGD_L2_05, benchmark_source)


def metric_label(m: dict[str, Any]) -> str:
    """A metric's name with its iterations where the name does not say them ("APGD-CE-50 Linf
    8/255"; "PGD-20 ..." already does)."""
    name, steps = m["name"], m.get("steps")
    if steps is None or any(ch.isdigit() for ch in name.split(" ")[0]):
        return name
    head, _, rest = name.partition(" ")
    return f"{head}-{steps} {rest}" if head == "APGD-CE" else name


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
