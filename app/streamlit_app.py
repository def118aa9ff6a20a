"""ratzoo's live demo: attack a CIFAR-10 image on the zoo's models and see what noise does.

Run from the repository root::

    streamlit run app/streamlit_app.py

Layout only: every computation is a pure function of :mod:`app.logic` (tested without
Streamlit) and every chart one of :mod:`app.charts`. Models are cached with
``st.cache_resource``, data with ``st.cache_data``; an attack runs only when its button
is pressed, and its result lives in ``st.session_state`` so that moving a widget
afterwards never reruns it.
"""

from __future__ import annotations

import collections
import io
import json
import os
import sys
from pathlib import Path
from typing import Any

# `streamlit run app/streamlit_app.py` puts app/ on sys.path, not the repository root:
# add it so that `app` is importable without installing the project.
_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

import ratzoo  # noqa: E402
from app import charts, logic  # noqa: E402

TITLE = "ratzoo: attack a randomized classifier"
CLASSES = logic.CLASSES
SOURCES = ("Gallery", "CIFAR-10 test image by index", "Upload your own")
UNKNOWN_LABEL = "unknown: attack the model's own clean prediction"


# --------------------------------------------------------------------------- cached resources and data


@st.cache_resource(max_entries=8, show_spinner="Loading the model...")
def cached_model(name: str, stamp: str) -> logic.LoadedModel:
    """A zoo model; ``stamp`` (its list_models row) changes when its checkpoint does.
    A failure raises and is not cached, so a checkpoint that lands later is picked up."""
    del stamp
    return logic.load_model(name)


@st.cache_data(ttl=20, show_spinner=False)
def zoo() -> list[dict[str, Any]]:
    """The zoo (short TTL: checkpoints land while the app runs)."""
    return ratzoo.list_models()


@st.cache_data(show_spinner=False)
def gallery() -> tuple[Any, list[dict[str, Any]], str]:
    return logic.load_gallery()


@st.cache_data(ttl=300, show_spinner="Looking for the CIFAR-10 test set...")
def cifar_status() -> str:
    """'' when the CIFAR-10 test set can be loaded here, else why not."""
    try:
        ratzoo.load_cifar10("test")
    except Exception as e:  # DatasetError, or anything the Hub client raises offline
        return f"{type(e).__name__}: {e}"
    return ""


@st.cache_data(max_entries=256, show_spinner=False)
def cifar_image(index: int) -> logic.PreparedImage:
    images, labels = ratzoo.load_cifar10("test")
    return logic.cifar_image(index, images, labels, "the CIFAR-10 test set")


@st.cache_data(max_entries=32, show_spinner=False)
def upload_image(data: bytes, name: str, fit: str) -> logic.PreparedImage:
    return logic.preprocess_upload(data, name, fit)


@st.cache_data(ttl=30, show_spinner=False)
def results(folder: str, skip: tuple[str, ...]) -> list[logic.ResultFile]:
    return logic.load_results(Path(folder), skip)


@st.cache_data(ttl=30, show_spinner=False)
def zoo_results(path: str) -> logic.ZooResults | None:
    return logic.load_zoo_results(Path(path))


def show_zoo_results(zr: logic.ZooResults) -> None:
    st.caption(" · ".join(x for x in (zr.description, zr.dataset, zr.decision_rule) if x))
    if zr.table:
        st.altair_chart(charts.zoo_table_chart(zr.table), width="stretch")
    for r in zr.norms_table:
        st.caption(f"{r['model']}: {r['metric']} = {r['value']:.3f}")
    if zr.eps_sweep:
        st.markdown("Accuracy against the Linf budget (the paper's Figure 3)")
        st.altair_chart(charts.sweep_chart(zr.eps_sweep, "eps (/255)"))
    if zr.eot_sweep:
        st.markdown("Accuracy against the attack's EOT samples (the paper's Figure 4): a stronger "
                    "attack on a randomized model averages more noise draws per step")
        st.altair_chart(charts.sweep_chart(zr.eot_sweep, "EOT samples", log_x=True))
    if zr.cw_norms:
        counts = collections.Counter(r["model"] for r in zr.cw_norms)
        st.markdown("Norms of the C&W examples that fool the decision rule (the paper's Figure 5; examples per "
                    "model: " + ", ".join(f"{m} {k}" for m, k in counts.items()) + "). On the noisy models most "
                    "of C&W's minimal examples sit on the boundary and fresh noise draws undo them, so their boxes "
                    "describe a minority of the images and are not a robustness measure: compare models by the "
                    "bounded PGD-L2 column above.")
        st.altair_chart(charts.norms_chart(zr.cw_norms), width="stretch")
        missing = {m: k for m, k in zr.cw_not_found.items() if k}
        if missing:
            st.caption("Images on which C&W found no adversarial example (not in the plot): "
                       + ", ".join(f"{m} {k}" for m, k in missing.items()))
    if zr.certified:
        st.markdown("Certified vs empirical L2 robustness (accuracy in [0, 1]): `certified @r` is the share of "
                    "images whose randomized-smoothing certificate (`python -m ratzoo.certify`) proves the "
                    "majority vote correct within L2 radius r; the empirical columns are what the EOT attacks "
                    "leave. For noise after the first layer the radius is divided by the first layer's Lipschitz "
                    "bound L, which is why only small radii certify.")
        st.dataframe(zr.certified, hide_index=True, width="stretch")
    if zr.table:
        with st.expander("The numbers"):
            st.dataframe(zr.table + zr.norms_table, hide_index=True, width="stretch")


def show_result_file(f: logic.ResultFile, expanded: bool) -> None:
    with st.expander(f"{f.name}" + (f": {f.description}" if f.description else ""), expanded=expanded):
        if f.problem:
            st.warning(f"{f.name}: {f.problem}")
            return
        if f.measurements:
            st.altair_chart(charts.results_chart(f.measurements), width="stretch")
            st.dataframe(f.measurements, hide_index=True, width="stretch")
        for path, table in f.tables.items():
            st.caption(path)
            chart = charts.table_line_chart(table)
            if chart is not None:
                st.altair_chart(chart, width="stretch")
            st.dataframe(table, hide_index=True, width="stretch")


def results_dir() -> Path:
    """``checkpoints/results``, next to the bundled checkpoints (``$RATZOO_CHECKPOINTS``
    when set, as ratzoo.load resolves them), or ``$RATZOO_RESULTS``."""
    if os.environ.get("RATZOO_RESULTS"):
        return Path(os.environ["RATZOO_RESULTS"])
    base = os.environ.get("RATZOO_CHECKPOINTS")
    return (Path(base) if base else _ROOT / "checkpoints") / "results"


def png(pixels: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def show_traceback(e: BaseException) -> None:
    """The traceback of an unexpected failure, folded away (for bug reports)."""
    import traceback

    with st.expander("Details for a bug report"):
        st.code("".join(traceback.format_exception(e)), language="text")


def show_pixels(pixels: Any, caption: str) -> None:
    """A 32x32 image enlarged 8x with nearest neighbour, sent as PNG (never JPEG)."""
    st.image(logic.enlarge(pixels), caption=caption, output_format="PNG")


# --------------------------------------------------------------------------- sidebar


def sidebar() -> dict[str, Any]:
    """All choices; returns them with the loaded model, the image and the attack spec
    (each ``None`` with an error message when unusable)."""
    state: dict[str, Any] = {"errors": {}}
    rows = logic.zoo_rows(zoo())
    by_name = {r["model"]: r for r in rows}
    names = list(by_name)
    available = [r["model"] for r in rows if r["available"]]
    default = "rat" if "rat" in available else (available[0] if available else names[0])
    sb = st.sidebar
    sb.header("1. Model")
    name = sb.selectbox("Zoo model", names, index=names.index(default), key="model",
                        format_func=lambda n: logic.model_option_label(by_name[n]),
                        help="Headline numbers come from each checkpoint's model card (measured by ratzoo.evaluate).")
    state["model_name"] = name
    row = by_name[name]
    state["model_row"] = row
    if row.get("description"):
        sb.caption(f"{row['description']}. Noise: {row.get('noise') or 'unknown until trained'}.")
    state["loaded"] = None
    try:
        stamp = json.dumps([m for m in zoo() if m["name"] == name], sort_keys=True, default=str)
        state["loaded"] = cached_model(name, stamp)
    except logic.ModelUnavailable as e:
        state["errors"]["model"] = f"Model '{name}' cannot be used: {e}"
    randomized = bool(state["loaded"] and state["loaded"].randomized)

    sb.header("2. Image")
    source = sb.radio("Image source", SOURCES, key="source")
    state["image"] = None
    try:
        state["image"] = choose_image(sb, source)
    except logic.InputError as e:
        state["errors"]["image"] = str(e)

    sb.header("3. Attack")
    attacks = logic.available_attacks()
    missing = [a.label for k, a in logic.ATTACKS.items() if k not in attacks]
    key = sb.selectbox("Attack", list(attacks), key="attack", format_func=lambda k: attacks[k].label)
    info = attacks[key]
    sb.caption(info.blurb)
    if missing:
        sb.caption(f"Not in this ratzoo yet: {', '.join(missing)}.")
    eps_label = ("Linf eps (in /255)" if info.norm == "Linf"
                 else "L2 eps" if info.bounded else "Reference L2 (C&W has no budget)")
    eps = sb.number_input(
        eps_label, value=float(info.eps_default), step=1.0 if info.norm == "Linf" else 0.05,
        format="%.2f" if info.norm == "Linf" else "%.3f", key=f"eps_{key}",
        help=f"Allowed: {logic.fmt_num(info.eps_min)} to {logic.fmt_num(info.eps_max)}{info.eps_unit}. "
             "L2 is measured over all 3x32x32 values in [0, 1].")
    steps = sb.number_input("Steps", value=info.steps_default, step=1, key=f"steps_{key}",
                            disabled=info.steps_max == 1,
                            help=f"Gradient steps, 1 to {info.steps_max}." if info.steps_max > 1 else "FGSM is one step.")
    eot = sb.number_input("EOT samples per step", value=10 if randomized else 1, step=1,
                          key="eot" if randomized else "eot_deterministic",
                          disabled=not randomized,
                          help=f"Noise draws averaged in each gradient step (1 to {logic.MAX_EOT_SAMPLES}). "
                               "Only for randomized models; a deterministic model needs one.")
    try:
        passes = int(steps) * int(info.fixed_kwargs.get("search_steps", 1)) * (int(eot) if randomized else 1)
    except (TypeError, ValueError):
        passes = 0
    if passes > 2000:
        sb.warning(f"{passes} forward/backward passes of the model: this takes a while on a CPU "
                   "(20 steps x 10 draws = 200 takes about a second).")
    with sb.expander("Advanced"):
        seed = st.number_input("Seed", value=0, step=1, key="seed",
                               help="Seeds the attack and the 100 decision draws (independent streams), "
                                    "exactly as ratzoo.evaluate does.")
        certify = False
        if logic.certify_available():
            certify = st.checkbox("Certify the clean image (randomized smoothing)", value=True, key="certify",
                                  help="ratzoo.certify with n0=100, n=1000, alpha=0.001: a radius within which "
                                       "no L2 perturbation can change the smoothed prediction.")
    state["certify"] = {"n0": 100, "n": 1000, "alpha": 0.001} if certify else None
    state["spec"] = None
    try:
        state["spec"] = logic.validate_spec(key, eps, steps, eot if randomized else 1, seed, randomized)
    except logic.InputError as e:
        state["errors"]["attack"] = str(e)
    return state


def choose_image(sb: Any, source: str) -> logic.PreparedImage | None:
    if source == "Upload your own":
        # The widget lets through twice the app's own limit, so that a file between the two
        # gets the app's explanation instead of the uploader's generic refusal.
        up = sb.file_uploader("Image file (any size; RGB, RGBA or grayscale)", key="upload",
                              max_upload_size=2 * logic.MAX_UPLOAD_BYTES // 2**20,
                              help=f"Resized to 32x32. At most {logic.MAX_UPLOAD_BYTES // 2**20} MiB.")
        fit = sb.radio("Make it square by", logic.FIT_MODES, key="fit", horizontal=True)
        label = sb.selectbox("Its true class", [UNKNOWN_LABEL, *CLASSES], key="upload_label")
        if up is None:
            return None
        img = upload_image(up.getvalue(), up.name, fit)
        if label != UNKNOWN_LABEL:
            img = logic.PreparedImage(img.pixels, CLASSES.index(label), img.source, img.note)
        return img
    if source == "CIFAR-10 test image by index":
        index = sb.number_input("Test image index (0 to 9999)", min_value=0, max_value=9999, value=0, step=1,
                                key="index")
        problem = cifar_status()
        if not problem:
            return cifar_image(int(index))
        _, records, _ = gallery()
        pos = logic.gallery_position_of(int(index), records)
        note = ("The CIFAR-10 test set is not available here, so the index cannot be looked up "
                f"({problem.splitlines()[0][:300]}). ")
        if pos is None:
            idx = ", ".join(str(r["index"]) for r in records)
            raise logic.InputError(note + f"Test image #{int(index)} is not in the bundled gallery; "
                                   f"choose one of the gallery's indices ({idx}) or the Gallery source.")
        img = logic.gallery_image(pos)
        return logic.PreparedImage(img.pixels, img.label, img.source, note + "Using the gallery's copy of it.")
    _, records, _ = gallery()
    pos = sb.selectbox("Gallery image", list(range(len(records))), key="gallery",
                       format_func=lambda i: f"{records[i]['class']} (test #{records[i]['index']})")
    return logic.gallery_image(int(pos))


# --------------------------------------------------------------------------- the attack tab


def attack_tab(state: dict[str, Any]) -> None:
    loaded, image, spec = state["loaded"], state["image"], state["spec"]
    for where in ("model", "image", "attack"):
        if where in state["errors"]:
            st.error(state["errors"][where])
    cols = st.columns([1, 3])
    with cols[0]:
        if image is not None:
            label = CLASSES[image.label] if image.label is not None else "unknown"
            show_pixels(image.pixels, f"{image.source}: {label}")
        elif state["source_is_upload"] and "image" not in state["errors"]:
            st.info("Upload an image in the sidebar (any size: it is resized to 32x32).")
    with cols[1]:
        if image is not None and image.note:
            st.caption(f"Image: {image.note}.")
        if spec is not None:
            st.markdown(f"**{state['model_name']}** · {spec.describe()}")
        ready = loaded is not None and image is not None and spec is not None
        pressed = st.button("Attack", type="primary", disabled=not ready, key="attack_button")
    inputs = (state["model_name"], image.key() if image else None, spec)
    if pressed and ready:
        bar = st.progress(0.0, text="Starting the attack...")
        try:
            outcome = logic.run_attack(loaded, image, spec, progress=lambda f, t: bar.progress(f, text=t),
                                       certify=state["certify"])
        except logic.InputError as e:
            st.error(str(e))
        except Exception as e:  # keep the app alive whatever the attack raises
            st.error(f"The attack failed: {type(e).__name__}: {e}")
            show_traceback(e)
        else:
            st.session_state["outcome"] = outcome
            st.session_state["outcome_inputs"] = inputs
            st.session_state["attacks_run"] = st.session_state.get("attacks_run", 0) + 1
        finally:
            bar.empty()
    outcome = st.session_state.get("outcome")
    if outcome is None:
        st.caption("Choose a model, an image and an attack, then press **Attack**.")
        return
    if st.session_state.get("outcome_inputs") != inputs:
        st.info("The settings changed since this result was computed; it is shown as it was. "
                "Press **Attack** to run the new settings.")
    show_outcome(outcome)


def show_outcome(o: logic.AttackOutcome) -> None:
    a = o.spec.info
    st.subheader("Result")
    st.caption(f"{o.model} · {o.source} · {o.spec.describe()} · attack {o.attack_seconds:.2f} s "
               f"(with predictions {o.total_seconds:.2f} s)")
    if o.found is False:
        st.info("C&W found no example that fools its own EOT estimate within its steps, so the "
                "'adversarial' below is the clean image. Try more steps.")
    if not o.clean_correct:
        st.info(o.verdict())
    elif o.success:
        st.warning(o.verdict())
    else:
        st.success(o.verdict())
    clean_px, adv_px = logic.to_uint8(o.x), logic.to_uint8(o.adv)
    pert_px, amp = logic.perturbation_image(o.x, o.adv)
    c1, c2, c3 = st.columns(3)
    with c1:
        show_pixels(clean_px, f"original: {CLASSES[o.clean_label]}")
    with c2:
        show_pixels(adv_px, f"adversarial: {CLASSES[o.adv_label]}")
    with c3:
        show_pixels(pert_px, f"perturbation, amplified x{amp:.1f} (gray = no change)")
    st.caption("Images enlarged 8x without smoothing. The perturbation is scaled so that its largest "
               f"change (Linf {o.norms.linf_255:.2f}/255) reaches black or white.")
    m = st.columns(5)
    y = o.label
    m[0].metric("clean prediction", CLASSES[o.clean_label],
                help=f"EOT probability of '{CLASSES[o.clean_label]}': {float(o.clean.probs[0, o.clean_label]):.3f}")
    m[1].metric("adversarial prediction", CLASSES[o.adv_label],
                help=f"EOT probability of '{CLASSES[o.adv_label]}': {float(o.adversarial.probs[0, o.adv_label]):.3f}; "
                     f"of the label '{CLASSES[y]}': {float(o.adversarial.probs[0, y]):.3f}")
    budget = a.format_eps(o.spec.eps)
    linf_budget = f" (budget {budget})" if a.bounded and a.norm == "Linf" else ""
    l2_budget = f" (budget {budget})" if a.bounded and a.norm == "L2" else (
        f" (reference {budget})" if not a.bounded else "")
    m[2].metric(f"Linf{linf_budget}", f"{o.norms.linf_255:.3f}/255")
    m[3].metric(f"L2{l2_budget}", f"{o.norms.l2:.4f}")
    m[4].metric("L0 (values changed)", f"{o.norms.l0} / {logic.NUM_VALUES}",
                help=f"{o.norms.l0_pixels} of 1024 pixels have at least one channel changed (|change| > 1e-6).")
    if o.within_budget is True:
        st.caption(f"The perturbation is within the {a.norm} budget {budget}.")
    elif o.within_budget is False:
        st.error(f"The perturbation exceeds the {a.norm} budget {budget}: this is a bug in the attack.")
    else:
        st.caption("C&W minimizes the L2 norm without a budget; compare its L2 with the reference value.")

    st.markdown("**Predictions before and after**: mean softmax over "
                f"{o.clean.samples if o.randomized else 1} noise draws, whiskers = +-1 std over draws.")
    st.altair_chart(charts.probs_chart(logic.probs_table(o), o.clean.samples if o.randomized else 1),
                    width="stretch")
    st.markdown("**How the noise changes the prediction**: the class each single noise draw predicts.")
    if o.randomized:
        st.altair_chart(charts.votes_chart(logic.votes_table(o), o.clean.samples), width="stretch")
        vy = int(o.clean.votes[0, y]), int(o.adversarial.votes[0, y])
        st.caption(f"'{CLASSES[y]}' wins {vy[0]} of {o.clean.samples} draws on the clean image and {vy[1]} "
                   "on the adversarial one. The decision is the EOT prediction (the mean softmax), not this vote.")
    else:
        st.caption("This model has no noise: every draw gives the same prediction.")
    check = logic.certificate_check(o)
    if check is not None:
        level, msg = check
        c = o.certificate
        lip = (f", first-layer Lipschitz bound {c['lipschitz']:.2f} (noise after layer 1: the feature-space "
               "radius is divided by it)") if c["lipschitz"] != 1.0 else ""
        st.markdown(f"**Certificate of the clean image** (randomized smoothing, ratzoo.certify with n0={c['n0']}, "
                    f"n={c['n']}, alpha={c['alpha']}; sigma {c['sigma']:.3g}{lip}): "
                    f"{'abstain' if c['label'] < 0 else repr(CLASSES[c['label']])}, "
                    f"certified L2 radius **{c['radius']:.4f}** vs the found adversarial's L2 **{o.norms.l2:.4f}**.")
        {"ok": st.success, "info": st.info, "violation": st.error}[level](msg)
    st.download_button("Download the adversarial image (32x32 PNG, rounded to 8 bits)", png(adv_px),
                       file_name=f"adversarial-{o.model}-{o.spec.attack}.png", mime="image/png", key="download")


# --------------------------------------------------------------------------- compare tab


def compare_tab(state: dict[str, Any]) -> None:
    st.markdown("The image and attack chosen in the sidebar, on every zoo model that is available. "
                "EOT draws are used only for randomized models; each verdict uses 100 fresh draws.")
    image, spec = state["image"], state["spec"]
    names = [r["name"] for r in zoo() if r.get("bundled") or r.get("hub_repo")]
    if not names:
        st.error("No zoo model is available yet: the checkpoints are still being trained.")
        return
    ready = image is not None and spec is not None
    if not ready:
        st.caption("Choose a usable image and attack in the sidebar first.")
    pressed = st.button(f"Compare all models ({len(names)})", disabled=not ready, key="compare_button")
    inputs = (tuple(names), image.key() if image else None, spec)
    if pressed and ready:
        bar = st.progress(0.0, text="Starting...")

        def make_spec(randomized: bool) -> logic.AttackSpec:
            return logic.AttackSpec(spec.attack, spec.eps, spec.steps, spec.eot_samples if randomized else 1,
                                    spec.seed)

        def load(name: str) -> logic.LoadedModel:
            stamp = json.dumps([m for m in zoo() if m["name"] == name], sort_keys=True, default=str)
            return cached_model(name, stamp)

        try:
            rows = logic.compare_models(names, load, image, make_spec,
                                        progress=lambda f, t: bar.progress(min(f, 1.0), text=t))
        except Exception as e:
            st.error(f"The comparison failed: {type(e).__name__}: {e}")
            show_traceback(e)
        else:
            st.session_state["comparison"] = rows
            st.session_state["comparison_inputs"] = inputs
            what = f"true label '{CLASSES[image.label]}'" if image.label is not None else \
                "each model's own clean prediction (the upload has no label)"
            st.session_state["comparison_label"] = (f"{image.source} · {spec.describe()} · attacked label: {what}. "
                                                    "robust = right before and after (the evaluator's rule).")
        finally:
            bar.empty()
    rows = st.session_state.get("comparison")
    if rows is None:
        return
    if st.session_state.get("comparison_inputs") != inputs:
        st.info("The settings changed since this comparison was computed; press the button to rerun it.")
    ok = [r for r in rows if "problem" not in r]
    for r in rows:
        if "problem" in r:
            st.error(f"{r['model']}: {r['problem']}")
    if ok:
        label = st.session_state.get("comparison_label", "")
        if label:
            st.caption(label)
        st.dataframe(ok, hide_index=True, width="stretch")
        st.altair_chart(charts.compare_chart(ok), width="stretch")


# --------------------------------------------------------------------------- results tab


def results_tab() -> None:
    st.markdown("#### The zoo")
    rows = logic.zoo_rows(zoo())
    st.dataframe(rows, hide_index=True, width="stretch")
    card = [{"model": r["model"], "setting": k.removesuffix(" (%)"), "robust_accuracy": v / 100}
            for r in rows for k, v in r.items() if k.endswith(" (%)")]
    if card:
        st.markdown("Headline numbers from the model cards:")
        st.altair_chart(charts.results_chart(card), width="stretch")
    else:
        st.caption("No model card carries measured numbers yet.")

    folder = results_dir()
    st.markdown("#### Measured results")
    try:
        zr = zoo_results(str(folder / logic.RESULTS_FILE))
    except logic.InputError as e:
        st.error(f"{folder / logic.RESULTS_FILE}: {e}")
        zr = None
    if zr is None:
        st.info(f"No measured results yet ({folder / logic.RESULTS_FILE} does not exist): "
                "`python -m train.experiments` then `python -m train.report` write it once the zoo is trained.")
    else:
        show_zoo_results(zr)
    certify_files = tuple(p.name for p in folder.glob("certify_*.json")) if zr and zr.certified else ()
    others = results(str(folder), (logic.RESULTS_FILE, *certify_files))
    records = results(str(folder / "records"), ())
    for f in others:
        show_result_file(f, expanded=not f.problem)
    if records:
        with st.expander(f"All evaluator records ({len(records)} files in {folder / 'records'})"):
            rows = [r for f in records for r in f.measurements]
            bad = [f"{f.name}: {f.problem}" for f in records if f.problem]
            if rows:
                st.dataframe(rows, hide_index=True, width="stretch")
            for b in bad:
                st.warning(b)

    st.markdown("#### The paper's Table 2, for context")
    st.caption("Araujo et al. (arXiv:1903.10219): WideResNet-28-10 on CIFAR-10, EOT attacks with 50 draws; "
               "Linf = PGD-10 at eps 0.3, L2 = C&W with 40 iterations. A bigger model and another protocol "
               "than the zoo's, so compare the ordering, not the numbers; the README also measures the zoo "
               "in the paper's Linf setting (PGD-10, eps 0.15 on [0, 1], EOT-50).")
    st.altair_chart(charts.paper_chart(list(logic.PAPER_TABLE2)), width="stretch")


# --------------------------------------------------------------------------- page


def main() -> None:
    st.set_page_config(page_title="ratzoo demo", layout="wide")
    logic.configure_threads()
    # The images are enlarged 8x on the server with nearest neighbour; this keeps the
    # browser from smoothing them again if it rescales them (zoom, HiDPI screens).
    st.markdown("<style>img { image-rendering: pixelated; }</style>", unsafe_allow_html=True)
    st.title(TITLE)
    st.markdown(
        "A **randomized** network adds Gaussian noise to its first layer at every prediction; its "
        "decision is the *EOT prediction*, the average over many noise draws. **RAT** trains such a "
        "network on adversarial examples. Pick a model and an image in the sidebar and attack it: the "
        "attack sees the noise too (it averages its gradient over EOT draws), and it succeeds only if "
        "the average over 100 fresh draws is fooled. Compare RAT with plain adversarial training "
        "(**at**) and noise alone (**rn**) under Linf and L2 attacks."
    )
    state = sidebar()
    state["source_is_upload"] = st.session_state.get("source") == "Upload your own"
    tab_attack, tab_compare, tab_results = st.tabs(["Attack", "Compare all models", "Zoo results"])
    with tab_attack:
        attack_tab(state)
    with tab_compare:
        compare_tab(state)
    with tab_results:
        results_tab()


main()
