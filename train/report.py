"""Turn the experiment records into results: ``python -m train.report``.

Reads ``checkpoints/results/records/*.json`` (written by ``python -m train.experiments``)
and writes, never by hand:

- ``checkpoints/results/results.json``: the zoo table, the paper's Figures 3-5 data;
- ``checkpoints/results/fig2_regions.png``, ``fig3_eps.png``, ``fig4_eot.png``, ``fig5_cw_norms.png``;
- the README's zoo table (between the ``zoo-table`` markers) and, in ``docs/*.md``, every other
  generated block: the measuring time (``zoo-notes``), the training commands (``zoo-commands``),
  the comparison with the paper's Table 2 (``paper-table``), the findings (``findings``), the
  certified accuracies (``certify-table``, from ``checkpoints/results/certify_<model>.json``
  written by ``python -m ratzoo certify``) and the paper's Figure 2 on the zoo (``figure2``);
- ``docs/leaderboard.md``, the leaderboard with the literature's claims (:mod:`train.leaderboard`);
- each bundled checkpoint's measured results (``config.json`` + model card metadata).

This module runs the steps; the work is split by job: :mod:`train.metrics` (records in,
``results.json`` out), :mod:`train.findings` (the paper's claims in words), :mod:`train.blocks`
(the generated blocks), :mod:`train.figures` (the plots) and :mod:`train.cards` (the cards).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from train import leaderboard
from train.blocks import (CERT_END, CERT_START, COMMANDS_END, COMMANDS_START, DOCS, FIG2_END, FIG2_START, FIND_END,
                          FIND_START, MARK_END, MARK_START, NOTES_END, NOTES_START, PAPER_END, PAPER_START,
                          certify_table, figure2_block, paper_table, readme_table, replace_block, zoo_caption,
                          zoo_commands, zoo_notes)
from train.cards import update_cards
from train.figures import plots
from train.findings import findings
from train.metrics import REPO_ROOT, RESULTS, build_results, load_benchmarks, load_certificates, load_records


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
    page = leaderboard.docs_page(leaderboard.entries())
    if not leaderboard.DOCS.is_file() or leaderboard.DOCS.read_text() != page:
        leaderboard.DOCS.write_text(page)
        print(f"wrote {leaderboard.DOCS.relative_to(REPO_ROOT)}", file=sys.stderr)
    if not args.no_plots:
        for path in plots(results):
            print(f"wrote {path}", file=sys.stderr)
    if not args.no_cards:
        print(f"updated cards: {update_cards(results)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
