"""The figures of ``python -m train.report`` (matplotlib, imported only to draw): in
``checkpoints/results/``, ``fig2_regions.png``, ``fig3_eps.png``, ``fig4_eot.png`` and
``fig5_cw_norms.png``, the paper's Figures 2-5 on the zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ratzoo.geometry import FIGURE2_EPS, REGION_WORDS, figure2
from ratzoo.record import Record
from train.metrics import LABELS, RESULTS


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
