"""The README's zoo table, the generated blocks of docs/*.md and the model cards agree with
checkpoints/results/results.json and the records, the report machinery turns records into
them faithfully, the paper's Figure 2 is computed right, and every README/docs link resolves."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from ratzoo.record import CertifyRecord
from train import blocks, cards, findings, metrics, report

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_JSON = REPO_ROOT / "checkpoints" / "results" / "results.json"


DOCS = REPO_ROOT / "docs"


def docs_text() -> str:
    """The README and every docs page: the generated blocks and the prose live across them."""
    return "\n".join(p.read_text() for p in [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))])


def _block(text: str, start: str, end: str) -> str:
    assert text.count(start) == 1 and text.count(end) == 1, f"{start} must appear exactly once"
    return text[text.index(start) + len(start): text.index(end)]


def _block_rows(text: str, start: str, end: str) -> dict[str, list[str]]:
    """The table rows (model label -> cells) between two README markers."""
    body = text[text.index(start) + len(start): text.index(end)]
    rows = {}
    for line in body.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) > 1 and cells[0] in metrics.LABELS.values():
            rows[cells[0]] = cells[1:]
    return rows


def _readme_rows(text: str) -> dict[str, list[str]]:
    return _block_rows(text, blocks.MARK_START, blocks.MARK_END)


def _expected_cells(res: dict) -> list[str]:
    by = {m["name"]: m for m in res["table"]}
    return [blocks.fmt_metric(by[n]) if n in by else "-" for n, _ in blocks.TABLE_COLUMNS]


def _record(key: str, acc: float, clean: float = 0.9, **extra) -> dict:
    return {"key": key, "n": 100, "clean_accuracy": clean, "clean_accuracy_ci95": [clean - 0.05, clean + 0.03],
            "robust_accuracy": acc, "robust_accuracy_ci95": [acc - 0.05, acc + 0.05], "randomized": True,
            "effective_eot_samples": 20, "eot_samples": 20, "decision_samples": 100, "dataset": "CIFAR-10 (test)",
            **extra}


def test_report_round_trip(tmp_path):
    """Synthetic records -> results -> README table -> parsed back: same numbers."""
    records = {
        "rat": {
            "clean": _record("clean", 0.8123, clean=0.8123),
            "pgd20_linf_8": _record("pgd20_linf_8", 0.4051),
            "cw_l2": _record("cw_l2", 0.0, accuracy_at={"0.25": {"accuracy": 0.61, "ci95": [0.5, 0.7]},
                                                        "0.5": {"accuracy": 0.33, "ci95": [0.2, 0.4]},
                                                        "1.0": {"accuracy": 0.05, "ci95": [0.0, 0.1]}},
                             norms={"median": 0.4321}, norms_per_image=[0.1, 0.4, float("inf")]),
            "pgd20_linf_2_eot5": _record("x", 0.7),
        },
        "at": {"clean": _record("clean", 0.7, clean=0.7), "fgsm_linf_8": _record("fgsm_linf_8", 0.45)},
    }
    results = metrics.build_results(records)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n{blocks.MARK_START}\nPLACEHOLDER-XYZ\n{blocks.MARK_END}\nafter\n")
    report.write_readme(results, readme)
    text = readme.read_text()
    assert "PLACEHOLDER-XYZ" not in text and text.endswith("after\n")
    rows = _readme_rows(text)
    assert rows["RAT"][0] == "81.2" and rows["RAT"][2] == "40.5"
    assert rows["RAT"][7:11] == ["61.0", "33.0", "5.0", "0.43"]
    assert rows["RAT"][5:7] == ["-", "-"]  # no benchmark record
    assert rows["AT"][1] == "45.0" and rows["AT"][2] == "-"
    for model, res in results["models"].items():
        assert rows[metrics.LABELS[model]] == _expected_cells(res)


def test_benchmark_column_and_how_much_the_single_attacks_overstate(tmp_path):
    """A benchmark record fills the table's benchmark column, and findings say by how much the
    table's strongest single attack at that budget overstates the model."""
    records = {"at": {"pgd20_linf_8": _record("pgd20_linf_8", 0.411), "apgd_ce_linf_8": _record("apgd_ce_linf_8", 0.407),
                      "pgd20_l2_0.5": _record("pgd20_l2_0.5", 0.50)}}
    bench = {"at_Linf": _bench_record("at", [True] * 371 + [False] * 629),
             "at_L2": _bench_record("at", [True] * 52 + [False] * 48, "L2")}
    results = metrics.build_results(records, None, bench)
    readme = tmp_path / "README.md"
    readme.write_text(f"{blocks.MARK_START}\n{blocks.MARK_END}\n")
    report.write_readme(results, readme)
    rows = _readme_rows(readme.read_text())
    assert rows["AT"][5:7] == ["37.1", "52.0"] and rows["AT"] == _expected_cells(results["models"]["at"])
    bench_metrics = [m for m in results["models"]["at"]["table"] if m["name"].startswith("Benchmark")]
    assert [m["record"] for m in bench_metrics] == ["benchmark/at_Linf.json", "benchmark/at_L2.json"]
    lines = findings.findings(results).splitlines()
    linf = next(x for x in lines if x.startswith("- *The table's strongest single attack at Linf 8/255*"))
    assert "overstates AT by 3.6 points" in linf and "APGD-CE Linf 8/255 40.7" in linf and "PGD-20 Linf 8/255 41.1" in linf
    l2 = next(x for x in lines if x.startswith("- *The table's strongest single attack at L2 0.5*"))
    assert "does not overstate AT (the benchmark is 2.0 points above it)" in l2


def test_readme_table_matches_results_json():
    """The committed README table is exactly what results.json says (it cannot drift)."""
    text = (REPO_ROOT / "README.md").read_text()
    rows = _readme_rows(text)
    if not RESULTS_JSON.is_file():
        assert rows == {}, "the README shows zoo numbers but checkpoints/results/results.json is missing"
        return
    results = json.loads(RESULTS_JSON.read_text())
    assert set(rows) == {metrics.LABELS[m] for m in results["models"]}
    for model, res in results["models"].items():
        assert rows[metrics.LABELS[model]] == _expected_cells(res), model


def test_committed_benchmark_metrics_point_to_their_records():
    """Every benchmark number in results.json names the committed record it came from, and that
    record holds the same number."""
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet (python -m train.experiments && python -m train.report)")
    results = json.loads(RESULTS_JSON.read_text())
    bench = [m for res in results["models"].values() for m in res["table"] if m["name"].startswith("Benchmark")]
    for m in bench:
        rec = json.loads((RESULTS_JSON.parent / m["record"]).read_text())
        assert (round(rec["robust_accuracy"], 6), rec["n"]) == (m["value"], m["n"]), m["record"]
    # every record of a model with a results row is in it (defense entries have no card of their own)
    assert len(bench) == sum(r["model"] in results["models"] for r in metrics.load_benchmarks().values())
    assert len(bench) >= 10


def test_cards_match_results_json():
    """Each bundled checkpoint's config.json and card carry the results.json numbers."""
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet (python -m train.experiments && python -m train.report)")
    from huggingface_hub import ModelCard

    results = json.loads(RESULTS_JSON.read_text())
    checked = 0
    for model, res in results["models"].items():
        folder = REPO_ROOT / "checkpoints" / model
        if not folder.is_dir() or not res["table"]:  # not measured yet: the card has the trainer's numbers
            continue
        cfg = json.loads((folder / "config.json").read_text())
        got = {m["name"]: m["value"] for m in cfg["results"]["metrics"]}
        assert got == {m["name"]: m["value"] for m in cards.card_metrics(res)}, model
        card = ModelCard.load(folder / "README.md")
        card_vals = {r.metric_name: r.metric_value for r in card.data.eval_results}
        for m in cards.card_metrics(res):
            want = round(m["value"], 4) if m.get("unit") == "L2" else round(100 * m["value"], 2)
            assert card_vals[m["name"]] == pytest.approx(want), (model, m["name"])
        checked += 1
    assert checked > 0


# --------------------------------------------------------------------------- paper comparison and certificates


def _cert_record(acc: dict[str, float], n: int = 4) -> CertifyRecord:
    return CertifyRecord(model="m", n=n, complete=True, params={"n": 1000, "n0": 100, "alpha": 0.001},
                         noise={"layer": 1, "sigma_min": 0.5}, lipschitz={"value": 20.0}, certified_accuracy=acc,
                         certified_accuracy_ci95={r: [0.0, 1.0] for r in acc}, seconds_per_image=2.5,
                         images=[{"correct": True, "radius": 0.03}, {"correct": True, "radius": 0.01},
                                 {"correct": False, "radius": 0.2}, {"correct": True, "radius": 0.0}])


def test_paper_and_certify_tables_round_trip(tmp_path):
    records = {
        "rat": {"clean": _record("clean", 0.8, clean=0.8),
                "paper_pgd10_linf_0.15": _record("paper_pgd10_linf_0.15", 0.0612),
                "pgd20_l2_0.5": _record("pgd20_l2_0.5", 0.5),
                "cw_l2": _record("cw_l2", 0.4444, accuracy_at={"0.5": {"accuracy": 0.31, "ci95": [0.2, 0.4]}},
                                 norms={"median": 0.4})},
        "standard": {"clean": _record("clean", 0.9, clean=0.9)},
    }
    certs = {"rat": _cert_record({"0": 0.75, "0.05": 0.25, "0.25": 0.0}),
             "lerat": _cert_record({"0": 0.5})}  # certified before any attack was measured: still shown
    results = metrics.build_results(records, certs)
    assert results["models"]["lerat"]["table"] == [] and results["models"]["lerat"]["randomized"] is True
    assert results["models"]["rat"]["certified"]["median_radius_correct"] == pytest.approx(0.01)
    readme = tmp_path / "README.md"
    readme.write_text("\n".join([blocks.MARK_START, blocks.MARK_END, blocks.PAPER_START, "old", blocks.PAPER_END,
                                  blocks.CERT_START, "old", blocks.CERT_END, ""]))
    report.write_readme(results, readme)
    text = readme.read_text()
    paper = _block_rows(text, blocks.PAPER_START, blocks.PAPER_END)
    assert paper["RAT"] == ["40.9", "6.1", "49.9", "44.4", "-", "31.0"]
    assert paper["Standard"] == ["-"] * 6
    cert = _block_rows(text, blocks.CERT_START, blocks.CERT_END)
    # max radius: 0.5 * Phi^-1(0.001^(1/1000)) / 20 = 0.5 * 2.463 / 20 = 0.0616
    assert cert["RAT"] == ["0.5", "20.0", "0.062", "75.0", "25.0", "0.0", "50.0", "31.0", "4", "1000", "2.5"]
    assert "Standard" not in cert and cert["LeRAT"][3:5] == ["50.0", "-"]
    names = [m["name"] for m in cards.card_metrics(results["models"]["rat"])]
    assert "certified accuracy at L2 0.05" in names and metrics.PAPER_LINF_NAME in names


def test_readme_paper_and_certify_tables_match_results_json():
    text = docs_text()
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet")
    results = json.loads(RESULTS_JSON.read_text())
    expected = blocks.paper_table(results)
    body = text[text.index(blocks.PAPER_START) + len(blocks.PAPER_START): text.index(blocks.PAPER_END)]
    assert body.strip() == expected.strip()
    body = text[text.index(blocks.CERT_START) + len(blocks.CERT_START): text.index(blocks.CERT_END)]
    assert body.strip() == blocks.certify_table(results).strip()


def test_findings_verdicts_follow_the_confidence_intervals():
    def res(**vals):
        return {"models": {m: {"table": [{"name": "PGD-20 Linf 8/255", "value": v, "n": 1000, "ci95": [v - 0.03, v + 0.03]}]}
                           for m, v in vals.items()}}
    assert findings.verdict({"ci95": [0.5, 0.6]}, {"ci95": [0.3, 0.4]}, ">") == "agrees"
    assert findings.verdict({"ci95": [0.2, 0.3]}, {"ci95": [0.35, 0.4]}, ">=") == "contradicts"
    assert findings.verdict({"ci95": [0.3, 0.4]}, {"ci95": [0.35, 0.45]}, ">").startswith("not resolved")
    assert findings.verdict({"ci95": [0.3, 0.4]}, {"ci95": [0.35, 0.45]}, ">=").startswith("agrees")
    text = findings.findings(res(rat=0.30, at=0.41, rn=0.01))
    line = next(x for x in text.splitlines() if x.startswith("- *RAT is at least as robust as AT against Linf attacks*"))
    assert "**contradicts**" in line and "RAT 30.0 [27.0, 33.0] (n=1000) vs AT 41.0" in line
    line = next(x for x in text.splitlines() if x.startswith("- *AT is more robust than R.N. against Linf attacks*"))
    assert "**agrees**" in line
    assert "LeRAT is at least as robust as RAT against Linf attacks* (Table 2: 40.0 vs 40.9; Figure 4): not measured" \
        in text


def _bench_record(model: str, robust: list[bool], threat: str = "Linf") -> dict:
    from ratzoo.record import Record

    n = len(robust)
    return Record(model=model, attack="benchmark", n=n, clean_accuracy=1.0, robust_accuracy=sum(robust) / n,
                  threat_model=threat, offset=0, per_image={"clean_correct": [True] * n, "robust": robust}).to_json()


def test_findings_state_the_claims_with_the_paired_test():
    """Benchmark records with per-image outcomes decide a claim by exact McNemar, and a table
    metric whose records carry per-image outcomes is paired too; the intervals stay in the line."""
    # 60 images both robust, 10 only RAT, 0 only AT: 70 vs 60 of 200, intervals overlap, McNemar p = 2^-9
    rat = [True] * 70 + [False] * 130
    at = [True] * 60 + [False] * 140
    bench = {"rat_Linf": _bench_record("rat", rat), "at_Linf": _bench_record("at", at),
             "rat_L2": _bench_record("rat", at, "L2"), "at_L2": _bench_record("at", at, "L2")}
    results = metrics.build_results({}, None, bench)
    c = next(x for x in results["paired"] if (x["source"], x["a"], x["b"]) == ("benchmark Linf", "rat", "at"))
    assert (c["n"], c["both"], c["only_a"], c["only_b"]) == (200, 60, 10, 0)
    assert c["p_value"] == pytest.approx(2 * 0.5 ** 10)
    assert c["accuracy_a_ci95"][0] < c["accuracy_b_ci95"][1]  # the unpaired intervals cannot tell
    lines = findings.findings(results).splitlines()
    linf = next(x for x in lines if x.startswith("- *RAT is at least as robust as AT against Linf attacks, under the benchmark*"))
    assert "**agrees**" in linf and "10 images robust only for RAT, 0 only for AT" in linf and "p=0.002" in linf
    assert "RAT 35.0 [" in linf and "+5.0 points" in linf
    l2 = next(x for x in lines if x.startswith("- *RAT is more robust than AT against L2 attacks, under the benchmark*"))
    assert "**not resolved (no clear paired difference)**" in l2 and "p=1" in l2
    rn = next(x for x in lines if x.startswith("- *AT is more robust than R.N. against Linf attacks, under the benchmark*"))
    assert "not measured yet" in rn
    # the other way round contradicts a ">=" claim
    flipped = metrics.build_results({}, None, {"rat_Linf": bench["at_Linf"] | {"model": "rat"},
                                              "at_Linf": bench["rat_Linf"] | {"model": "at"}})
    line = next(x for x in findings.findings(flipped).splitlines()
                if x.startswith("- *RAT is at least as robust as AT against Linf attacks, under the benchmark*"))
    assert "**contradicts**" in line
    # table records with per-image outcomes are paired; without them the intervals decide
    recs = {m: {"pgd20_linf_8": _bench_record(m, v) | {"robust_accuracy_ci95": [0.2, 0.5]}} for m, v in
            (("rat", rat), ("at", at))}
    line = next(x for x in findings.findings(metrics.build_results(recs)).splitlines()
                if x.startswith("- *RAT is at least as robust as AT against Linf attacks*"))
    assert "**agrees**" in line and "exact McNemar" in line
    for r in recs.values():
        del r["pgd20_linf_8"]["robust_per_image"]
    line = next(x for x in findings.findings(metrics.build_results(recs)).splitlines()
                if x.startswith("- *RAT is at least as robust as AT against Linf attacks*"))
    assert "**agrees (no clear difference)**" in line and "McNemar" not in line


def test_findings_flag_cw_weaker_than_pgd_l2():
    """A C&W comparison is not evidence on a model where bounded PGD-L2 finds clearly more."""
    def m(name, v, n):
        return {"name": name, "value": v, "n": n, "ci95": [v - 0.05, v + 0.05]}
    res = {"models": {
        "rn": {"table": [m(metrics.CW_AT_05, 0.83, 200), m(metrics.PGD_L2_05, 0.21, 1000)]},
        "at": {"table": [m(metrics.CW_AT_05, 0.55, 200), m(metrics.PGD_L2_05, 0.55, 1000)]},
        "rat": {"table": [m(metrics.CW_AT_05, 0.62, 200), m(metrics.PGD_L2_05, 0.60, 1000)]},
    }}
    assert findings.cw_weaker_than_pgd(res, "rn") is not None
    assert findings.cw_weaker_than_pgd(res, "at") is None and findings.cw_weaker_than_pgd(res, "rat") is None
    lines = findings.findings(res).splitlines()
    cw_rn = next(x for x in lines if x.startswith("- *R.N. is more robust than AT against L2 attacks*"))
    assert "**agrees**" in cw_rn and "**Not evidence:** on R.N." in cw_rn
    pgd_rn = next(x for x in lines if x.startswith("- *R.N. is more robust than AT against L2 attacks (PGD-L2)*"))
    assert "**contradicts**" in pgd_rn and "Not evidence" not in pgd_rn
    cw_rat = next(x for x in lines if x.startswith("- *RAT is more robust than AT against L2 attacks*"))
    assert "Not evidence" not in cw_rat
    flagged = [x for x in lines if x.startswith("- *C&W-L2 measures")]
    assert len(flagged) == 1 and "R.N.'s" in flagged[0] and "**contradicts**" in flagged[0]
    assert "83.0 [78.0, 88.0] (n=200)" in flagged[0] and "21.0 [16.0, 26.0] (n=1000)" in flagged[0]


def test_fig5_keeps_the_fooled_images_when_the_record_says_which():
    assert metrics._fig5_norms({"norms_per_image": [0.1, None, 0.3], "fooled_per_image": [True, False, False]}) == [0.1]
    assert metrics._fig5_norms({"norms_per_image": [0.1, None, 0.3]}) == [0.1, None, 0.3]
    assert metrics._fig5_norms({}) is None


def test_readme_findings_match_results_json():
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet")
    text = docs_text()
    body = _block(text, blocks.FIND_START, blocks.FIND_END)
    assert body.strip() == findings.findings(json.loads(RESULTS_JSON.read_text())).strip()


def test_readme_measuring_minutes_match_results_json():
    """The docs' "Measuring took" line (per model and total) is the sum of the records' elapsed times."""
    text = docs_text()
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet (python -m train.experiments && python -m train.report)")
    results = json.loads(RESULTS_JSON.read_text())
    line = next(ln for ln in text.splitlines() if ln.startswith("Measuring took"))
    per_model, total = line.split(": ", 1)[1].rstrip(".").split("; ")
    shown = dict(item.rsplit(" ", 1) for item in per_model.split(", "))
    minutes = {metrics.LABELS[m]: sum(r.get("elapsed_minutes", {}).values()) for m, r in results["models"].items()}
    assert shown == {label: f"{v:.0f}" for label, v in minutes.items()}
    assert total.startswith(f"{sum(minutes.values()):.0f} in all")


def test_readme_cw_prose_holds_for_the_committed_records():
    """The hand-written C&W paragraph's claims hold for the committed cw_l2 records: C&W found an
    example for at least 99 % of the attacked images, the noisy models keep 40 % or more not fooled,
    AT almost nothing (<= 5 %). If a re-measurement breaks one, docs/cw.md must be rewritten."""
    text = " ".join(docs_text().split())
    assert "at least 99 %" in text and "the noisy models keep 40 %" in text, "the C&W paragraph moved or changed"
    records = REPO_ROOT / "checkpoints" / "results" / "records"
    recs = {m: json.loads((records / f"{m}__cw_l2.json").read_text())
            for m in metrics.MODELS if (records / f"{m}__cw_l2.json").is_file()}
    if not recs:
        pytest.skip("no C&W records committed yet")
    if "at least 99 %" in text:
        assert all(r["norms"]["found_fraction"] >= 0.99 for r in recs.values()), \
            {m: r["norms"]["found_fraction"] for m, r in recs.items()}
    if "the noisy models keep 40 %" in text:
        noisy = {m: r["robust_accuracy"] for m, r in recs.items() if r["randomized"]}
        assert noisy and min(noisy.values()) >= 0.40, noisy
        assert recs["at"]["robust_accuracy"] <= 0.05


def test_margin_records_reach_results_and_findings():
    """C&W records of the ``margin`` stage land in results.json (not in the table), ordered by
    kappa, and get one finding line per model that gives each kappa's verdict against PGD-20 L2
    and kappa 0's number, all at L2 0.5."""
    acc_at = lambda a, lo, hi: {"0.5": {"accuracy": a, "ci95": [lo, hi]}}  # noqa: E731
    records = {"rn": {
        "clean": _record("clean", 0.87, clean=0.87),
        "pgd20_l2_0.5": _record("pgd20_l2_0.5", 0.21, n=1000),
        "cw_l2": _record("cw_l2", 0.7, accuracy_at=acc_at(0.81, 0.78, 0.84), norms={"median": 0.3}),
        "cw_l2_kappa1": _record("cw_l2_kappa1", 0.3, stage="margin", params={"kappa": 1.0},
                                accuracy_at=acc_at(0.22, 0.17, 0.28), norms={"median": 0.9, "found_fraction": 1.0}),
        "cw_l2_kappa0.25": _record("cw_l2_kappa0.25", 0.4, stage="margin", params={"kappa": 0.25},
                                   accuracy_at=acc_at(0.5, 0.45, 0.55), norms={"median": 0.5}),
    }}
    results = metrics.build_results(records)
    res = results["models"]["rn"]
    assert list(res["cw_margin"]) == ["cw_l2_kappa0.25", "cw_l2_kappa1"]
    assert res["cw_margin"]["cw_l2_kappa1"]["accuracy_at_0.5"] == 0.22
    assert res["cw_margin"]["cw_l2_kappa1"]["kappa"] == 1.0
    assert all(m["record"] not in res["cw_margin"] for m in res["table"])
    lines = [ln for ln in findings.findings(results).splitlines() if "with a margin" in ln]
    assert len(lines) == 1 and "kappa 0 (the table's) left 81.0 [78.0, 84.0]" in lines[0]
    k025, k1 = lines[0].index("kappa 0.25 leaves"), lines[0].index("kappa 1 leaves")
    assert k025 < k1 and "PGD-20 L2 leaves 21.0" in lines[0]
    assert "50.0 [45.0, 55.0] (n=100), **still clearly weaker than PGD-20 L2**" in lines[0][k025:k1]
    assert "22.0 [17.0, 28.0] (n=100), **no clear difference from PGD-20 L2**" in lines[0][k1:]
    records["rn"]["cw_l2_kappa1"]["accuracy_at"] = acc_at(0.6, 0.55, 0.65)
    lines = [ln for ln in findings.findings(metrics.build_results(records)).splitlines() if "with a margin" in ln]
    assert "60.0 [55.0, 65.0] (n=100), **still clearly weaker than PGD-20 L2**" in lines[0]
    records["rn"]["cw_l2_kappa1"]["accuracy_at"] = acc_at(0.1, 0.05, 0.15)
    lines = [ln for ln in findings.findings(metrics.build_results(records)).splitlines() if "with a margin" in ln]
    assert "10.0 [5.0, 15.0] (n=100), **clearly stronger than PGD-20 L2**" in lines[0]


def test_readme_margin_prose_holds_for_the_committed_records():
    """The hand-written paragraph on C&W with a margin holds for the committed records (via
    results.json): at kappa 1 every model keeps <= 5 % unfooled; on R.N. kappa 1 takes C&W's
    accuracy at L2 0.5 from 83 % (kappa 0, same images) to 31 % against PGD-20 L2's 21 %, kappa 0.25 and 1 both still
    clearly weaker; on AT / RAT / LeRAT kappa 1 leaves the clean accuracy at L2 0.5 (no fooling
    example within 0.5) and kappa 0.25's interval overlaps PGD-20 L2's; no kappa is clearly
    stronger than PGD-20 L2. If a re-measurement breaks one, the README must be rewritten."""
    text = " ".join(docs_text().split())
    assert "at kappa 1, C&W leaves 5 % or fewer of the images unfooled on every model" in text, \
        "the margin paragraph moved or changed: update this test with it"
    results = json.loads(RESULTS_JSON.read_text())
    pct = lambda v: round(100 * v)  # noqa: E731
    margins = {}
    for m, res in results["models"].items():
        by_kappa = {x["kappa"]: x for x in (res.get("cw_margin") or {}).values()}
        assert {0.25, 1.0} <= set(by_kappa), f"{m}: margin records missing ({sorted(by_kappa)})"
        margins[m] = by_kappa
        pgd = next(x for x in res["table"] if x["name"] == metrics.PGD_L2_05)
        for x in by_kappa.values():
            assert x["accuracy_at_0.5_ci95"][1] >= pgd["ci95"][0], f"{m} kappa {x['kappa']} clearly stronger"
        assert by_kappa[1.0]["not_fooled"] <= 0.05, (m, by_kappa[1.0]["not_fooled"])
        if m == "rn":
            cw0 = by_kappa[1.0]["kappa0_accuracy_at_0.5_same_images"]
            assert "from 83 % down to 31 % on the same images, near PGD-20 L2's 21 % (on 1,000 images" in text
            assert (pct(cw0["value"]), pct(by_kappa[1.0]["accuracy_at_0.5"]), pct(pgd["value"])) == (83, 31, 21)
            assert all(x["accuracy_at_0.5_ci95"][0] > pgd["ci95"][1] for x in by_kappa.values())
        if m in ("at", "rat", "lerat"):
            rec = json.loads((REPO_ROOT / "checkpoints" / "results" / "records" / f"{m}__cw_l2_kappa1.json").read_text())
            assert by_kappa[1.0]["accuracy_at_0.5"] == pytest.approx(rec["clean_accuracy"]), m
            assert by_kappa[0.25]["accuracy_at_0.5_ci95"][0] <= pgd["ci95"][1], m
    assert set(margins) >= {"rn", "at", "rat", "lerat"}


def test_kappa0_accuracy_on_the_same_images_as_a_margin_record():
    """The margin lines compare with the table's kappa-0 C&W on the same first n images,
    recomputed from its per-image lists exactly as the evaluator computes accuracy_at: on every
    committed C&W record the recomputation over all its images gives the record's own number."""
    records = REPO_ROOT / "checkpoints" / "results" / "records"
    checked = 0
    for path in sorted(records.glob("*__cw_l2.json")):
        rec = json.loads(path.read_text())
        got = metrics.cw_accuracy_on_first(rec, rec["n"])
        assert got is not None, f"{path.name} lacks the per-image lists"
        assert got["value"] == pytest.approx(rec["accuracy_at"]["0.5"]["accuracy"], abs=1e-9), path.name
        assert got["ci95"] == pytest.approx(rec["accuracy_at"]["0.5"]["ci95"], abs=1e-6), path.name
        checked += 1
    if not checked:
        pytest.skip("no C&W records committed yet")
    # clean-wrong, fooled at 0.3, fooled at 0.7, not fooled: at 0.5 images 3 and 4 count
    rec0 = {"clean_correct_per_image": [False, True, True, True], "fooled_per_image": [True, True, True, False],
            "norms_per_image": [0.0, 0.3, 0.7, None]}
    assert metrics.cw_accuracy_on_first(rec0, 4)["value"] == 0.5
    assert metrics.cw_accuracy_on_first(rec0, 2)["value"] == 0.0
    assert metrics.cw_accuracy_on_first(rec0, 5) is None  # more images than the record has
    assert metrics.cw_accuracy_on_first({"n": 4}, 2) is None  # an older record without the lists
    margin = {"stage": "margin", "n": 4, "params": {"kappa": 1.0}, "robust_accuracy": 0.0,
              "robust_accuracy_ci95": [0.0, 0.5], "accuracy_at": {"0.5": {"accuracy": 0.25, "ci95": [0.05, 0.7]}}}
    got = metrics.margin_metrics({"cw_l2": {**rec0, "n": 4}, "cw_l2_kappa1": margin})
    assert got["cw_l2_kappa1"]["kappa0_accuracy_at_0.5_same_images"]["value"] == 0.5
    other = {**rec0, "n": 4, "split": "train"}  # other images: no comparison
    assert metrics.margin_metrics({"cw_l2": other, "cw_l2_kappa1": margin})["cw_l2_kappa1"][
        "kappa0_accuracy_at_0.5_same_images"] is None


# --------------------------------------------------------------------------- docs and links


def test_generated_doc_blocks_equal_what_the_records_give():
    """Every generated block in README.md and docs/*.md is what `python -m train.report` writes
    from the committed records now (so no number in the docs can drift from the records)."""
    if not RESULTS_JSON.is_file():
        pytest.skip("no checkpoints/results/results.json yet")
    results = json.loads(RESULTS_JSON.read_text())
    text = docs_text()
    expected = {
        (blocks.MARK_START, blocks.MARK_END): blocks.zoo_caption(results) + "\n\n" + blocks.readme_table(results),
        (blocks.NOTES_START, blocks.NOTES_END): blocks.zoo_notes(results),
        (blocks.COMMANDS_START, blocks.COMMANDS_END): blocks.zoo_commands(),
        (blocks.FIG2_START, blocks.FIG2_END): blocks.figure2_block(),
    }
    for (start, end), body in expected.items():
        assert _block(text, start, end).strip() == body.strip(), start
    assert "| Standard |" in _block(text, blocks.FIG2_START, blocks.FIG2_END)


def test_the_readme_is_short_and_keeps_the_two_commands_and_the_leaderboard_block():
    text = (REPO_ROOT / "README.md").read_text()
    board = _block(text, "<!-- leaderboard -->", "<!-- /leaderboard -->")  # filled by train.leaderboard
    assert len(text.splitlines()) - len(board.splitlines()) < 150
    assert "make demo" in text and "make test" in text
    assert text.index("<!-- /leaderboard -->") < text.index(blocks.MARK_START)
    assert text.count("![") == 3  # the three plots
    code = text.split("## Ten lines of ratzoo", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    assert len([ln for ln in code.splitlines() if ln.strip()]) <= 10
    names = set(re.findall(r"ratzoo\.(\w+)", code))
    import ratzoo
    assert names and names <= set(ratzoo.__all__), names - set(ratzoo.__all__)


def test_readme_and_docs_links_resolve_to_files_that_exist():
    pages = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
    assert len(pages) >= 7
    checked = 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+://|mailto:", target):
                continue
            path = (page.parent / target.split("#", 1)[0]).resolve()
            assert path.exists(), f"{page.name} links to {target}, which does not exist"
            assert REPO_ROOT in path.parents or path == REPO_ROOT, f"{page.name} links outside the repository: {target}"
            checked += 1
    assert checked >= 15


# --------------------------------------------------------------------------- the paper's Figure 2


def test_figure2_shares_of_a_hand_checked_example():
    """Five examples, eps = 0.1, L2 radii 0.1, 0.3, 1.0, worked out by hand:
    (linf, l2) = (0.05, 0.2) inside; (0.1, 0.5) inside (on the boundary); (0.2, 0.25) cap from
    0.3 on; (0.3, 0.9) cap from 1.0 on; (0.5, 2.0) beyond everywhere; inf = not found."""
    import ratzoo

    linf = [0.05, 0.1, 0.2, 0.3, 0.5, float("inf")]
    l2 = [0.2, 0.5, 0.25, 0.9, 2.0, float("inf")]
    got = ratzoo.norm_regions(linf, l2, eps=0.1, eps_l2=[0.1, 0.3, 1.0])
    assert [(g["inside"], g["cap"], g["beyond"]) for g in got] == [(0.4, 0.0, 0.6), (0.4, 0.2, 0.4), (0.4, 0.4, 0.2)]
    assert all(g["n"] == 5 and g["not_found"] == 1 for g in got)
    with pytest.raises(ValueError, match="one value per example"):
        ratzoo.norm_regions([0.1], [0.1, 0.2], eps=0.1, eps_l2=[0.1])


def test_figure2_shares_sum_to_one_and_the_cap_starts_empty_on_the_committed_records():
    import ratzoo
    from ratzoo.geometry import FIGURE2_EPS, FIGURE2_KEYS

    recs, _ = ratzoo.Record.load_folder(REPO_ROOT / "checkpoints" / "results" / "records")
    cw = [r for r in recs.values() if r.attack == "cw-l2" and "linf" in r.per_image and r.extra.get("key") in FIGURE2_KEYS]
    if not cw:
        pytest.skip("no C&W record with per-image Linf norms committed yet")
    for r in cw:
        for eps in FIGURE2_EPS.values():
            pts = ratzoo.norm_regions(r, eps=eps)
            assert len(pts) == 13 and pts[0]["eps_l2"] == pytest.approx(eps)
            assert pts[-1]["eps_l2"] == pytest.approx(eps * 3072 ** 0.5)
            for p in pts:
                assert p["inside"] + p["cap"] + p["beyond"] == pytest.approx(1.0)
            # an L2 norm <= eps bounds the Linf norm by eps: the cap is empty at eps' = eps
            assert pts[0]["cap"] == 0.0
            caps = [p["cap"] for p in pts]
            assert caps == sorted(caps)  # the cap only grows with eps'
            fooled = sum(bool(f) for f in r.per_image["fooled"])
            assert pts[0]["n"] + pts[0]["not_found"] == fooled


def test_figure2_reads_a_folder_and_draws_each_models_largest_cw_record(tmp_path):
    """``Record.load_folder`` skips and counts a file that is no record; :func:`ratzoo.figure2`
    draws each model's largest C&W record with per-image Linf norms, names the model whose C&W
    record has none, ignores other records, and gives no reading without both Standard and AT."""
    import ratzoo

    def cw(model: str, key: str, n: int, norms: bool = True) -> ratzoo.Record:
        per_image = {"linf": [0.01] * n, "l2": [0.5] * n, "fooled": [True] * n} if norms else {}
        return ratzoo.Record(model, "cw-l2", n, 1.0, 0.0, per_image=per_image, extra={"key": key})

    cw("standard", "cw_l2", 4).save(tmp_path / "standard__cw_l2.json")
    cw("standard", "cw_l2_fig2", 8).save(tmp_path / "standard__cw_l2_fig2.json")
    cw("at", "cw_l2", 4, norms=False).save(tmp_path / "at__cw_l2.json")
    cw("rn", "cw_l2_kappa1", 4).save(tmp_path / "rn__cw_l2_kappa1.json")
    (tmp_path / "broken.json").write_text("{")
    recs, bad = ratzoo.Record.load_folder(tmp_path)
    assert bad == 1 and list(recs) == ["at__cw_l2", "rn__cw_l2_kappa1", "standard__cw_l2", "standard__cw_l2_fig2"]
    fig = ratzoo.figure2(recs.values(), {"standard": "Standard", "at": "AT", "rn": "R.N."})
    assert fig.missing == ["AT"]
    assert {(r["model"], r["images"]) for r in fig.rows} == {("Standard", 8)}
    assert len(fig.rows) == 2 * 13 * 3  # Linf radii x L2 radii x regions
    assert {r["share (%)"] for r in fig.rows if r["rank"] == 0} == {100.0}  # every Linf norm is 0.01
    assert fig.reading == ""


def test_readme_prose_on_the_benchmark_holds_for_the_committed_records():
    """The README's hand-written sentences about the leaderboard hold for the records they cite:
    RAT less robust than AT under Linf by the paired test, more robust than AT and LeRAT under L2;
    the single attacks overstate every benchmarked model."""
    text = (REPO_ROOT / "README.md").read_text()
    results = json.loads(RESULTS_JSON.read_text())
    if "RAT is *less* robust than plain adversarial" in text:
        c = next(c for c in results["paired"] if (c["source"], c["a"], c["b"]) == ("benchmark Linf", "rat", "at"))
        assert c["p_value"] < 0.05 and c["difference"] < 0 and c["n"] == 1000
    if "benchmark finds RAT *more* robust than AT" in text:
        c = next(c for c in results["paired"] if (c["source"], c["a"], c["b"]) == ("benchmark L2", "rat", "at"))
        assert c["p_value"] < 0.001 and c["difference"] > 0 and c["n"] == 1000
        assert f"{100 * c['accuracy_a']:.1f} vs {100 * c['accuracy_b']:.1f} %" in text
    if "and more robust than LeRAT" in text:
        c = next(c for c in results["paired"] if (c["source"], c["a"], c["b"]) == ("benchmark L2", "rat", "lerat"))
        assert c["p_value"] < 0.001 and c["difference"] > 0 and c["n"] == 1000
        assert f"{100 * c['accuracy_a']:.1f} vs {100 * c['accuracy_b']:.1f} %" in text.replace("\n", " ")
        assert f"by {round(100 * c['difference'])} points" in text
    if "single attacks overstate every model against the benchmark" in text:
        found = 0
        for res in results["models"].values():
            by = {m["name"]: m for m in res["table"]}
            for bench, singles in metrics.BENCHMARK_METRICS.values():
                if bench in by:
                    assert min(by[s]["value"] for s in singles if s in by) > by[bench]["value"]
                    found += 1
        assert found >= 4
