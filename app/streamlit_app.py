"""The ratzoo demo: ``streamlit run app/streamlit_app.py`` (or ``make demo``).

Two tabs: **Attack** (one image attacked on several zoo models side by side, by default the
undefended network and RAT) and **Zoo results** (the measured numbers and the paper's
figures). Everything is computed by ratzoo's public API through :mod:`app.logic`; this file
only lays it out. Query parameters preselect for links and load tests:
``?image=3&models=standard,rat&attack=pgd-linf&steps=20&eot=10``.
"""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run app/streamlit_app.py` from a checkout
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402
import torch  # noqa: E402

import ratzoo  # noqa: E402
from app import charts, logic, results  # noqa: E402

TITLE = "ratzoo: can noise protect a network from adversarial attacks?"
SOURCES = ("Gallery", "CIFAR-10 test image", "Upload your own")


@st.cache_resource(show_spinner=False)
def cached_model(name: str, slot: int, where: str) -> logic.LoadedModel:
    """One copy per worker slot (a model's noise generator lives on the module)."""
    return logic.load_model(name)


@st.cache_data(show_spinner=False)
def zoo(where: str) -> list[dict[str, Any]]:
    return ratzoo.list_models()


@st.cache_data(show_spinner=False)
def cifar(where: str) -> tuple[Any, Any]:
    return ratzoo.load_cifar10("test")


@st.cache_data(show_spinner=False)
def result_rows(where: str, labels: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """Everything the results tab draws from the records, computed once per server."""
    named, bad = results.load_named_records()
    recs = list(named.values())
    fig2 = ratzoo.figure2(recs, dict(labels))
    return {"fig2": fig2.rows, "missing": fig2.missing, "reading": fig2.reading,
            "sweeps": results.sweep_rows(recs, dict(labels)), "records": results.record_rows(named, dict(labels)),
            "bad": bad}


def where() -> str:
    """Part of the cache keys: the checkpoints in use (tests swap them); never shown."""
    return os.environ.get("RATZOO_CHECKPOINTS", "") + "|" + os.environ.get("RATZOO_CIFAR10", "")


def png(pixels: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def query(name: str, default: Any, lo: int | None = None, hi: int | None = None) -> Any:
    """A link's ``?name=value``: the default where it is missing or unreadable, clamped to the
    widget's ``[lo, hi]`` (a link may come from anywhere; a widget given a value out of its range
    raises, and the visitor would see a traceback)."""
    try:
        value = type(default)(st.query_params.get(name, default))
    except (TypeError, ValueError):
        return default
    if lo is not None:
        value = max(lo, value)
    return min(hi, value) if hi is not None else value


# --------------------------------------------------------------------------- choosing


def choose_image() -> tuple[logic.PreparedImage | None, str]:
    """The image to attack, or ``None`` and why not (said next to the disabled Attack button)."""
    source = st.radio("Image", SOURCES, horizontal=True, key="source")
    if source != SOURCES[2]:
        st.session_state.pop("upload_error", None)  # an old upload's error does not follow the visitor
    try:
        if source == "Gallery":
            _, recs = logic.load_gallery()
            pos = st.selectbox("Gallery image", range(len(recs)), index=query("image", logic.DEFAULT_IMAGE, 0, len(recs) - 1),
                               format_func=lambda i: f"{recs[i]['class']} (test image #{recs[i]['index']})", key="gallery")
            return logic.gallery_image(pos), ""
        if source == "CIFAR-10 test image":
            try:
                images, labels = cifar(where())
            except ratzoo.DatasetError as e:
                st.error(f"The CIFAR-10 test set is not available here ({e}); use the gallery instead.")
                return None, "the CIFAR-10 test set is not available here: pick a gallery image"
            index = st.number_input("Test image number", 0, len(labels) - 1, 0, key="cifar_index")
            return logic.cifar_image(int(index), images, labels), ""
        generation = st.session_state.setdefault("upload_generation", 0)
        up = st.file_uploader("Your image (any size; it is shrunk to 32x32)", max_upload_size=logic.MAX_UPLOAD_MB,
                              type=["png", "jpg", "jpeg", "gif", "bmp", "tif", "tiff", "webp"],
                              key=f"upload_{generation}")
        fit = st.radio("Make it square by", logic.FIT_MODES, horizontal=True, key="fit")
        if up is None:
            if st.session_state.get("upload_error"):
                st.error(st.session_state["upload_error"])
                return None, "the file you chose could not be used (the message below says why): choose another"
            return None, "upload an image first, or pick one from the gallery"
        try:
            image = logic.preprocess_upload(up.getvalue(), up.name, fit)
        except logic.InputError as e:
            # the rejected file leaves the uploader (a new key empties it); its reason stays until the next choice
            st.session_state["upload_error"] = f"{e}. Nothing was attacked."
            st.session_state["upload_generation"] = generation + 1
            st.rerun()
        st.session_state.pop("upload_error", None)
        return image, ""
    except logic.InputError as e:
        st.error(str(e))
        return None, "the image could not be prepared (the message below says why)"


def choose_attack(models: list[dict[str, Any]]) -> tuple[list[str], logic.AttackSpec | None, bool]:
    available = [m["name"] for m in models if m.get("bundled") or m.get("hub_repo")]
    words = {m["name"]: logic.model_words(m) for m in models}
    asked = [n for n in (st.query_params.get("models") or ",".join(logic.DEFAULT_MODELS)).split(",") if n]
    wanted = [n for n in asked if n in available]
    unknown = [n for n in asked if n not in available]
    if unknown:
        st.warning(f"The link asks for {', '.join(repr(n) for n in unknown)}, which the zoo here does not have; "
                   f"it has {', '.join(available)}. " + ("Showing the others." if wanted else
                                                         f"Showing {words[available[0]].split(':')[0]}."))
    chosen = st.multiselect("Models (side by side)", available, default=wanted or available[:1],
                            format_func=lambda n: words[n].split(":")[0], key="models")
    for n in chosen:
        st.caption(words[n])
    keys = list(logic.ATTACKS)
    key = st.selectbox("Attack", keys, index=keys.index(query("attack", "pgd-linf")) if query("attack", "pgd-linf") in keys
                       else 0, format_func=lambda k: logic.ATTACKS[k].label, key="attack")
    a = logic.ATTACKS[key]
    st.caption(a.blurb)
    with st.expander("Attack settings", expanded=False):
        eps = st.number_input("Budget" + (" (in /255 of the pixel range)" if a.norm == "Linf" else " (L2, pixels in [0, 1])"),
                              value=float(a.eps_default), key=f"eps_{key}") if a.bounded else None
        steps = st.number_input("Steps", 1, a.steps_max, query("steps", a.steps_default, 1, a.steps_max), key=f"steps_{key}",
                                disabled=a.steps_max == 1)
        eot = st.number_input("Noise draws per step (EOT)", 1, logic.MAX_EOT_SAMPLES, query("eot", 10, 1, logic.MAX_EOT_SAMPLES), key="eot",
                              help=logic.EOT_WORDS)
        seed = st.number_input("Seed", 0, 2**31 - 1, 0, key="seed")
        certify = st.checkbox("Also certify the clean image (noisy models; randomized smoothing, 1,000 draws)",
                              key="certify")
    try:
        spec = logic.validate_spec(key, eps, steps, eot, seed)
    except logic.InputError as e:
        st.error(str(e))
        spec = None
    return chosen, spec, certify


# --------------------------------------------------------------------------- attacking


def run(chosen: list[str], image: logic.PreparedImage, spec: logic.AttackSpec, certify: bool,
        labels: dict[str, str]) -> None:
    bar = st.progress(0.0, text="Starting...")
    running = st.session_state["running"] = {"model": "", "step": 0, "total": 0}
    workers = logic.shared_pool()

    waited: list[float] = []

    def on_wait(position: int, busy: int) -> None:
        if not waited:
            waited.extend([time.monotonic(), position])
        bar.progress(0.0, text=f"Waiting for a free worker: you are number {position} in the queue "
                               f"({busy} of {workers.workers} workers busy with other visitors' attacks).")

    done: list[logic.Result] = []
    try:
        with workers.slot(on_wait) as slot:
            st.session_state["waited"] = (f"You waited {time.monotonic() - waited[0]:.0f} s for a free worker "
                                          f"(number {waited[1]} in the queue when you pressed Attack)." if waited else "")
            for name in chosen:
                loaded = cached_model(name, slot, where())
                running.update(model=labels[name], step=0, total=0)

                def tick(step: int, total: int, name: str = name) -> None:
                    running.update(step=step, total=total)
                    bar.progress(min(1.0, step / max(total, 1)), text=f"{labels[name]}: attack step {step} of {total}")

                done.append(logic.attack_image(loaded, image, spec, tick, certify))
    except logic.ModelUnavailable as e:
        st.error(f"A model could not be loaded: {e}")
    except Exception as e:  # keep the page alive whatever an attack raises
        st.error(f"The attack failed: {type(e).__name__}: {e}")
    else:
        st.session_state["results"] = done
        st.session_state["results_for"] = (tuple(chosen), image.source, spec)
    st.session_state.pop("running", None)  # not reached when Stop (a rerun) interrupts the attack
    bar.empty()


def show_result(r: logic.Result, label: str) -> None:
    st.markdown(f"**{label}**")
    {"fooled": st.error, "held": st.success}.get(r.verdict, st.info)(r.sentence())
    clean, adv = logic.to_uint8(r.x), logic.to_uint8(r.outcome.adv_images)
    classes = logic.CLASSES
    st.image([logic.enlarge(clean), logic.enlarge(adv)], width=150,
             caption=[f"before: {classes[r.clean_label]}", f"after: {classes[r.adv_label]}"])
    norms = logic.norms_text(r)
    st.markdown(" · ".join(f"{k}: **{v}**" for k, v in norms.items() if k != "budget") + f" · {norms['budget']}")
    st.altair_chart(charts.probability_chart(logic.probability_rows(r), list(classes)), width="stretch")
    st.caption(f"Class probabilities: the average over {logic.draws_text(r.outcome.adv)}, which decides."
               if r.randomized else "Class probabilities: one prediction (this model has no noise).")
    c = r.certificate
    if c is not None:
        st.caption(f"Certificate of the clean image: '{classes[c.label]}' for every change of L2 size below "
                   f"{c.radius:.3f} (randomized smoothing, {c.n} draws, holds with probability 1 - {c.alpha:g}); "
                   f"this attack's change has L2 {float(r.outcome.l2[0]):.3f}." if c.label >= 0 else
                   "Certificate of the clean image: none (the noisy votes are too split to certify).")
    with st.expander(f"Details for developers: {label}", expanded=False):
        pert, amp = logic.perturbation_image(r.x, r.outcome.adv_images)
        st.image(logic.enlarge(pert), width=150, caption=f"the change, amplified {amp:.0f}x (gray = none)")
        o = r.outcome
        noise = (f"noise draws per step used: {o.eot_samples} · decision: the average over {logic.draws_text(o.adv)}"
                 if r.randomized else "no noise: one prediction decides, no draws to average")
        st.markdown(f"`ratzoo.run_attack` · {r.spec.describe()} · {noise} · attack {o.attack_s:.2f} s, "
                    f"total {o.elapsed_s:.2f} s · randomness: {o.randomness.kind}")
        st.download_button("Download the attacked image (32x32 PNG)", png(adv), file_name=f"adversarial-{r.model}.png",
                           mime="image/png", key=f"download_{r.model}")


def attack_tab(models: list[dict[str, Any]]) -> None:
    labels = {m["name"]: m["label"] for m in models}
    # The visitor looks at the button they pressed: the buttons, then progress and the answer,
    # then the choices (filled in first, laid out below).
    top, answer = st.container(), st.container()
    st.markdown("##### Choose the image, the models and the attack")
    left, right = st.columns([1, 2])
    with left:
        image, no_image = choose_image()
        if image is not None:
            st.image(logic.enlarge(image.pixels), width=160, caption=logic.image_caption(image))
            if image.note:
                st.caption(image.note)
    with right:
        chosen, spec, certify = choose_attack(models)
        if spec is not None:
            st.caption(f"{spec.describe()}. Against a noisy model, EOT (Expectation over Transformation) means "
                       "the attacker averages its gradient over noise draws; a model counts as fooled only if the "
                       f"average over {logic.DECISION_SAMPLES} fresh draws is.")
    why_not = no_image or ("choose at least one model" if not chosen else "")
    why_not = why_not or ("" if spec is not None else "fix the attack setting the message below points to")
    ready = not why_not
    with top:
        with st.container(horizontal=True):  # side by side on a phone too (columns stack there)
            pressed = st.button("Attack", type="primary", disabled=not ready, key="attack_button", width="stretch",
                                help=None if ready else f"Attack is off: {why_not}.")
            st.button("Stop", key="stop_button", width="stretch")
        if ready:
            st.caption(f"Attacks the {logic.CLASSES[image.label] if image.label is not None else 'uploaded'} image "
                       f"below on {' and '.join(labels[n] for n in chosen)}; change the image, models and attack "
                       "below.")
        else:
            st.caption(f"Attack is off: {why_not}.")
    with answer:
        stopped = st.session_state.pop("running", None)
        if stopped is not None and not pressed:
            where_ = f" on {stopped['model']} at step {stopped['step']} of {stopped['total']}" if stopped["model"] else ""
            st.warning(f"Stopped{where_}: the attack was interrupted and nothing was measured. Press Attack to start "
                       "again.")
        if pressed and ready:
            st.session_state.pop("results", None)
            run(chosen, image, spec, certify, labels)
        res = st.session_state.get("results")
        if not res:
            return
        if st.session_state.get("results_for") != (tuple(chosen), image.source if image else None, spec):
            st.info("The settings changed since this result; press Attack to run them.")
        st.markdown("#### Verdict: " + " · ".join(f"{labels[r.model]} {r.verdict}" for r in res))
        if st.session_state.get("waited"):
            st.caption(st.session_state["waited"])
        for col, r in zip(st.columns(len(res)), res):
            with col:
                show_result(r, labels[r.model])
        st.divider()


# --------------------------------------------------------------------------- results


def zoo_columns(table: list[dict[str, Any]]) -> dict[str, Any]:
    """One number format per unit: accuracies with one decimal, the C&W distance with two."""
    names = table[0].keys() if table else []
    return {c: st.column_config.NumberColumn(format="%.1f" if c.endswith("(%)") else "%.2f")
            for c in names if c.endswith("(%)") or "(L2)" in c}


def results_tab(models: list[dict[str, Any]]) -> None:
    labels = results.model_labels(models)
    order = list(labels.values())
    st.markdown("#### The zoo")
    table = results.zoo_table(models)
    with st.container(key="narrow_cue"):  # shown on narrow screens only (the page's CSS)
        st.caption("⇆ The table has more columns: swipe it sideways.")
    st.dataframe(table, hide_index=True, width="stretch", column_config=zoo_columns(table))
    st.caption("Accuracy (%) under each attack on 1,000 CIFAR-10 test images (noisy models judged by the average "
               f"over {logic.DECISION_SAMPLES} noise draws, attacked with EOT-20). The last column is a distance, "
               "not a percentage: the median L2 size of the smallest change C&W needed. Budgets are on pixels in "
               "[0, 1]: the paper's Linf budget 0.3 on pixels in [-1, 1] is 0.15 here (38/255).")
    acc = [r for r in results.accuracy_rows(models) if "certified" not in r["setting"]]
    if acc:
        st.altair_chart(charts.accuracy_chart(acc, order), width="stretch")
    rows = result_rows(where(), tuple(labels.items()))
    fig2, missing = rows["fig2"], rows["missing"]
    st.markdown("#### Where C&W's examples lie (the paper's Figure 2)")
    if fig2:
        eps_name = st.selectbox("Linf radius", list(dict.fromkeys(r["Linf radius"] for r in fig2)), key="fig2_eps")
        st.altair_chart(charts.figure2_chart([r for r in fig2 if r["Linf radius"] == eps_name], order), width="stretch")
        st.caption("Share of the C&W (L2) examples that fooled each model: inside the Linf ball, outside it but "
                   "inside the L2 ball of the radius on the x axis (the 'cap'), or beyond. The paper measures on "
                   "inputs in [-1, 1], where its Linf radius 0.3 is 0.15 on our [0, 1] scale. "
                   + rows["reading"])
    if missing:
        st.caption(f"Not shown yet (their C&W measurement predates per-image Linf norms): {', '.join(missing)}.")
    sweeps = rows["sweeps"]
    for key, x, title, log_x in (("fig3", "budget (/255)", "Accuracy vs Linf budget (the paper's Figure 3)", True),
                                 ("fig4", "noise draws per step", "Accuracy vs EOT noise draws (the paper's Figure 4)", True)):
        if sweeps[key]:
            st.markdown(f"#### {title}")
            st.altair_chart(charts.sweep_chart(sweeps[key], x, order, log_x), width="stretch")
    with st.expander("For developers: every measurement record", expanded=False):
        st.dataframe(rows["records"], hide_index=True, width="stretch")
        if rows["bad"]:
            st.warning(f"{rows['bad']} record files could not be read.")


def main() -> None:
    st.set_page_config(page_title="ratzoo demo", layout="wide")
    torch.set_num_threads(1)  # one attack per worker and core (logic.WorkerPool)
    st.markdown("<style>img { image-rendering: pixelated; } .st-key-narrow_cue { display: none; } "
                "@media (max-width: 720px) { .st-key-narrow_cue { display: block; } h1 { font-size: 1.75rem !important; } }"
                "</style>", unsafe_allow_html=True)
    st.title(TITLE)
    st.markdown("A tiny change to an image can fool a neural network. **RAT** (randomized adversarial training) "
                "adds random noise inside the network and trains it on attacked images. Press **Attack** to attack "
                "the same image on an undefended network and on RAT, and see which one is fooled.")
    models = zoo(where())
    tab_attack, tab_results = st.tabs(["Attack", "Zoo results"])
    with tab_attack:
        attack_tab(models)
    with tab_results:
        results_tab(models)


main()
