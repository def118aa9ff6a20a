"""Altair charts of the demo, built from :mod:`app.logic`'s plain rows (no Streamlit here)."""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import ratzoo

from .logic import CLASSES

IMAGE_COLORS = alt.Scale(domain=["clean", "adversarial"], range=["#4c78a8", "#e45756"])
CLASS_SORT = list(CLASSES)
# One colour per zoo model in every chart, by its place in the registry (standard grey, AT blue,
# R.N. orange, RAT red, LeRAT purple); the zoo's names and order are the registry's.
ZOO_PALETTE = ["#9d9d9d", "#4c78a8", "#f58518", "#e45756", "#b279a2"]
ZOO_COLORS = dict(zip([m["name"] for m in ratzoo.list_models()], ZOO_PALETTE))
EXTRA_COLORS = ["#54a24b", "#eeca3b", "#72b7b2", "#ff9da6", "#9d755d", "#bab0ac"]


def model_order(models) -> list[str]:
    """Zoo models in the zoo's order, then any others in order of appearance."""
    seen = list(dict.fromkeys(str(m) for m in models))
    return [m for m in ZOO_COLORS if m in seen] + [m for m in seen if m not in ZOO_COLORS]


def model_color(models, title: str = "model", legend: bool = True) -> alt.Color:
    order = model_order(models)
    extra = iter(EXTRA_COLORS * 4)
    colors = [ZOO_COLORS.get(m) or next(extra) for m in order]
    return alt.Color("model:N", scale=alt.Scale(domain=order, range=colors), sort=order, title=title,
                     legend=alt.Legend() if legend else None)


def probs_chart(rows: list[dict[str, Any]], samples: int) -> alt.LayerChart:
    """Grouped bars of the EOT class probabilities (mean over noise draws) for the clean and
    the adversarial image, with a +-1 std whisker for the spread over draws."""
    df = pd.DataFrame(rows)
    base = alt.Chart(df).encode(
        x=alt.X("class:N", sort=CLASS_SORT, title=None, axis=alt.Axis(labelAngle=-40)),
        xOffset=alt.XOffset("image:N", sort=["clean", "adversarial"]),
    )
    bars = base.mark_bar().encode(
        y=alt.Y("mean probability:Q", scale=alt.Scale(domain=[0, 1]),
                title=f"mean softmax over {samples} draws"),
        color=alt.Color("image:N", scale=IMAGE_COLORS, title="image"),
        tooltip=[alt.Tooltip("image:N"), alt.Tooltip("class:N"),
                 alt.Tooltip("mean probability:Q", format=".3f"), alt.Tooltip("std:Q", format=".3f")],
    )
    # bandPosition 0.5: the whisker sits in the middle of its bar, not at the band's edge
    whiskers = base.mark_rule(color="black", opacity=0.7).encode(
        y="low:Q", y2="high:Q", xOffset=alt.XOffset("image:N", sort=["clean", "adversarial"], bandPosition=0.5))
    return alt.layer(bars, whiskers).properties(height=260)


def votes_chart(rows: list[dict[str, Any]], samples: int) -> alt.Chart:
    """Histogram of the class predicted by each single noise draw, clean vs adversarial."""
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("class:N", sort=CLASS_SORT, title=None, axis=alt.Axis(labelAngle=-40)),
        xOffset=alt.XOffset("image:N", sort=["clean", "adversarial"]),
        y=alt.Y("draws:Q", scale=alt.Scale(domain=[0, samples]), title=f"draws (of {samples})"),
        color=alt.Color("image:N", scale=IMAGE_COLORS, title="image"),
        tooltip=["image:N", "class:N", "draws:Q", alt.Tooltip("fraction:Q", format=".0%")],
    ).properties(height=220)


def compare_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    """Per model: probability of the attacked label before and after the attack."""
    long = []
    for r in rows:
        if "problem" in r:
            continue
        for which, key in (("clean", "P(label) clean"), ("adversarial", "P(label) adversarial")):
            long.append({"model": r["model"], "image": which, "P(label)": r[key],
                         "prediction": r[f"{which} prediction"], "attack succeeded": r["attack succeeded"]})
    df = pd.DataFrame(long)
    order = [r["model"] for r in rows if "problem" not in r]
    return alt.Chart(df).mark_bar().encode(
        x=alt.X("model:N", sort=order, title=None, axis=alt.Axis(labelAngle=0)),
        xOffset=alt.XOffset("image:N", sort=["clean", "adversarial"]),
        y=alt.Y("P(label):Q", scale=alt.Scale(domain=[0, 1]), title="EOT probability of the label"),
        color=alt.Color("image:N", scale=IMAGE_COLORS, title="image"),
        tooltip=["model:N", "image:N", "prediction:N", alt.Tooltip("P(label):Q", format=".3f"), "attack succeeded:N"],
    ).properties(height=260)


def results_chart(rows: list[dict[str, Any]]) -> alt.LayerChart:
    """Robust accuracy (with its 95% CI) per setting, one bar per model."""
    df = pd.DataFrame(rows)
    if "ci_low" not in df:
        df["ci_low"] = df["robust_accuracy"]
        df["ci_high"] = df["robust_accuracy"]
    base = alt.Chart(df).encode(
        y=alt.Y("setting:N", sort=list(dict.fromkeys(df["setting"])), title=None, axis=alt.Axis(labelLimit=260)),
        yOffset=alt.YOffset("model:N", sort=model_order(df["model"])),
    )
    bars = base.mark_bar().encode(
        x=alt.X("robust_accuracy:Q", scale=alt.Scale(domain=[0, 1], clamp=True), axis=alt.Axis(format="%"),
                title="accuracy"),
        color=model_color(df["model"]),
        tooltip=["model:N", "setting:N", alt.Tooltip("robust_accuracy:Q", format=".1%"),
                 alt.Tooltip("ci_low:Q", format=".1%", title="95% CI low"),
                 alt.Tooltip("ci_high:Q", format=".1%", title="95% CI high"), "n:Q"],
    )
    whiskers = base.mark_rule(color="black").encode(
        x="ci_low:Q", x2="ci_high:Q", yOffset=alt.YOffset("model:N", sort=model_order(df["model"]), bandPosition=0.5))
    n_rows = df["setting"].nunique() * df["model"].nunique()
    return alt.layer(bars, whiskers).properties(height=max(120, 14 * n_rows))


def paper_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    """The paper's Table 2 as grouped bars."""
    long = [{"model": r["model"], "attack": k, "accuracy": v}
            for r in rows for k, v in r.items() if k not in ("model", "method")]
    return alt.Chart(pd.DataFrame(long)).mark_bar().encode(
        x=alt.X("model:N", sort=[r["model"] for r in rows], title=None, axis=alt.Axis(labelAngle=0)),
        xOffset="attack:N",
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=alt.Color("attack:N", title="attack"),
        tooltip=["model:N", "attack:N", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(height=240)


def table_line_chart(rows: list[dict[str, Any]]) -> alt.Chart | None:
    """A line chart for a generic table (e.g. a grid search): the first numeric column that
    varies is the x axis, the other numeric columns in [0, 1] are the lines. ``None`` when
    the table has no such shape."""
    df = pd.DataFrame(rows)
    numeric = [c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])]
    if len(df) < 2 or not numeric:
        return None
    x = next((c for c in numeric if df[c].nunique() == len(df)), None)
    ys = [c for c in numeric if c != x and df[c].between(0, 1).all()]
    if x is None or not ys:
        return None
    long = df.melt(id_vars=[x], value_vars=ys, var_name="metric", value_name="value")
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", title=x), y=alt.Y("value:Q", axis=alt.Axis(format="%")),
        color="metric:N", tooltip=[f"{x}:Q", "metric:N", alt.Tooltip("value:Q", format=".3f")],
    ).properties(height=240)


def zoo_table_chart(rows: list[dict[str, Any]]) -> alt.LayerChart:
    """results.json's headline metrics: one group of bars per metric, one bar per model,
    with the 95% confidence interval."""
    return results_chart([{**r, "setting": r["metric"], "robust_accuracy": r["value"]} for r in rows])


def sweep_chart(rows: list[dict[str, Any]], x: str, log_x: bool = False) -> alt.FacetChart:
    """Accuracy against a swept parameter (Linf eps, EOT samples), one line per model,
    one panel per attack: the paper's Figures 3 and 4."""
    df = pd.DataFrame(rows)
    scale = alt.Scale(type="log", base=2) if log_x else alt.Scale(zero=False)
    return alt.Chart(df).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", scale=scale, title=x),
        y=alt.Y("accuracy:Q", scale=alt.Scale(domain=[0, 1]), axis=alt.Axis(format="%")),
        color=model_color(df["model"]),
        tooltip=["model:N", "attack:N", f"{x}:Q", alt.Tooltip("accuracy:Q", format=".1%")],
    ).properties(width=260, height=220).facet(column=alt.Column("attack:N", title=None))


def norms_chart(rows: list[dict[str, Any]]) -> alt.Chart:
    """Distribution of C&W's minimal L2 norms per model (the paper's Figure 5)."""
    df = pd.DataFrame(rows)
    return alt.Chart(df).mark_boxplot(extent="min-max").encode(
        x=alt.X("model:N", sort=model_order(df["model"]), title=None, axis=alt.Axis(labelAngle=0)),
        y=alt.Y("L2:Q", title="minimal adversarial L2 (C&W)"),
        color=model_color(df["model"], legend=False),
    ).properties(height=260)
