"""Altair charts of the demo; each takes rows (lists of dicts) and knows its units.

Percentages are drawn on a 0-100 axis titled with "%"; probabilities on 0-1; distances on
their own axes. Every class name is an axis label (horizontal bars), so all ten stay
readable on a 390 px phone.
"""

from __future__ import annotations

from typing import Any

import altair as alt

BEFORE_AFTER = alt.Scale(domain=["before", "after"], range=["#4c78a8", "#e45756"])
REGION_COLORS = alt.Scale(domain=["inside the Linf ball", "L2 cap outside it", "beyond the L2 radius"],
                          range=["#54a24b", "#f58518", "#9d9d9d"])


# Okabe & Ito's colour-blind-safe palette, in the zoo's order (Standard, AT, R.N., RAT, LeRAT, ...):
# no two neighbours share a hue family, so Standard/AT and R.N./RAT stay apart.
MODEL_PALETTE = ("#0072B2", "#E69F00", "#CC79A7", "#009E73", "#D55E00", "#56B4E9", "#F0E442", "#000000")


def _data(rows: list[dict[str, Any]]) -> alt.Data:
    return alt.Data(values=rows)


def model_colors(order: list[str]) -> alt.Scale:
    """One colour per model, the same in every chart (the palette repeats past its length)."""
    return alt.Scale(domain=order, range=[MODEL_PALETTE[i % len(MODEL_PALETTE)] for i in range(len(order))])


def probability_chart(rows: list[dict[str, Any]], classes: list[str]) -> alt.Chart:
    """The probability of each class before and after the attack (what the decision averages)."""
    return alt.Chart(_data(rows)).mark_bar().encode(
        # labelOverlap=False: Vega's default hides every other label where it guesses they collide
        y=alt.Y("class:N", sort=classes, title=None, axis=alt.Axis(labelLimit=120, labelOverlap=False)),
        yOffset=alt.YOffset("image:N", sort=["before", "after"]),
        x=alt.X("probability:Q", scale=alt.Scale(domain=[0, 1]), title="probability"),
        color=alt.Color("image:N", scale=BEFORE_AFTER, title=None, legend=alt.Legend(orient="top")),
        tooltip=["class:N", "image:N", alt.Tooltip("probability:Q", format=".3f")],
    ).properties(height=alt.Step(12))  # 12 px per bar, 24 per class: room for every class name


def accuracy_chart(rows: list[dict[str, Any]], order: list[str]) -> alt.Chart:
    """Accuracies in % (0-100 axis) per setting and model; distances never enter here."""
    return alt.Chart(_data(rows)).mark_bar().encode(
        y=alt.Y("setting:N", title=None, sort=None, axis=alt.Axis(labelLimit=220)),
        yOffset=alt.YOffset("model:N", sort=order),
        x=alt.X("accuracy (%):Q", scale=alt.Scale(domain=[0, 100]), title="accuracy (%)"),
        # below the plot, two per row, never cut: three in a row did not fit a 390 px phone
        color=alt.Color("model:N", sort=order, scale=model_colors(order),
                        legend=alt.Legend(orient="bottom", columns=2, labelLimit=0, title=None)),
        tooltip=["model:N", "setting:N", "accuracy (%):Q", "n:Q"],
    ).properties(height=alt.Step(6))


def sweep_chart(rows: list[dict[str, Any]], x: str, order: list[str], log_x: bool = False) -> alt.Chart:
    """Accuracy (%) against a budget or a number of draws: one panel per attack, its name above
    it, and one line per model (colour). Dashes per attack needed a legend that Vega-Lite drew as
    marker shapes and that did not fit a phone; the x axis spans the measured values."""
    xs = [r[x] for r in rows]
    span = [min(xs), max(xs)] if xs else None
    return alt.Chart(_data(rows)).mark_line(point=True).encode(
        x=alt.X(f"{x}:Q", scale=alt.Scale(type="log", domain=span, nice=False) if log_x
                else alt.Scale(zero=False, domain=span, nice=False)),
        y=alt.Y("accuracy (%):Q", scale=alt.Scale(domain=[0, 100])),
        color=alt.Color("model:N", sort=order, scale=model_colors(order),
                        legend=alt.Legend(orient="top", columns=3, labelLimit=0, title=None)),
        tooltip=["model:N", "attack:N", f"{x}:Q", "accuracy (%):Q", "n:Q"],
    ).properties(height=150, width=280).facet(
        row=alt.Row("attack:N", title=None,
                    header=alt.Header(labelOrient="top", labelAngle=0, labelAnchor="start", labelFontWeight="bold")),
        spacing=10)


def figure2_chart(rows: list[dict[str, Any]], order: list[str]) -> alt.Chart:
    """The paper's Figure 2: stacked shares (%) of C&W examples per region as the L2 radius grows."""
    return alt.Chart(_data(rows)).mark_area().encode(
        x=alt.X("L2 radius / Linf radius:Q", scale=alt.Scale(type="log", domain=[1, 56]),
                title="L2 radius / Linf radius"),
        y=alt.Y("share (%):Q", stack="zero", scale=alt.Scale(domain=[0, 100], clamp=True), title="share (%)"),  # fits a 120 px panel
        color=alt.Color("region:N", scale=REGION_COLORS, legend=alt.Legend(orient="top", columns=1)),
        order=alt.Order("rank:Q"),
        tooltip=["model:N", "region:N", "L2 radius:Q", "share (%):Q", "examples:Q"],
        # each model's name above its panel, left-aligned: rotated beside it, it was clipped on a phone
    ).properties(height=110, width=260).facet(
        row=alt.Row("model:N", sort=order, title=None,
                    header=alt.Header(labelOrient="top", labelAngle=0, labelAnchor="start", labelFontWeight="bold")),
        spacing=10)
