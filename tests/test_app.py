"""The Streamlit demo driven headlessly by streamlit.testing.v1.AppTest on the bundled zoo.

Each test is one thing a first-time visitor saw go wrong (issue 17), asserted on the page:
the first screen tells the story (standard fooled, RAT holding, EOT spelled out), numbers are
ratzoo's own, norms never sit on a percentage axis, no server path and no code name reaches
the page, developer detail is closed, Stop leaves a "stopped" state, the upload limit shown is
the one enforced, lerat is described by the std it learned, and a visitor who waits is told.
"""

from __future__ import annotations

import io
import json
import os
import re
import threading
import time
from pathlib import Path

import pyarrow as pa
import pytest
import torch

import ratzoo
from app import images, logic

st = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
APP = REPO / "app" / "streamlit_app.py"
TIMEOUT = 120  # seconds per script run: the CPU may be busy
CODE_NAMES = ("cw_l2", "pgd20", "decision_samples", "eot_samples", "noise_sigma", "score", "fgsm_linf")


@pytest.fixture
def app(monkeypatch) -> AppTest:
    monkeypatch.delenv("RATZOO_CHECKPOINTS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def walk(node, skip_developer: bool = False):
    """Every element of the page (both tabs), optionally without the developer expanders."""
    for child in (node.children.values() if isinstance(getattr(node, "children", None), dict) else ()):
        if skip_developer and getattr(child, "type", "") == "expander" and "developers" in child.label:
            continue
        yield child
        yield from walk(child, skip_developer)


def page_text(at: AppTest, skip_developer: bool = False) -> str:
    """All text a visitor can see: values, labels, options, captions, tables, chart data."""
    out = []
    for e in walk(at._tree, skip_developer):
        for attr in ("value", "label", "options", "help", "placeholder"):
            try:
                v = getattr(e, attr)
            except Exception:  # widgets without that property
                continue
            if v is not None and not callable(v):
                out.append(str(v) if not hasattr(v, "to_csv") else v.to_csv())
        proto = getattr(e, "proto", None)
        if getattr(e, "type", "") == "vega_lite_chart":
            out.append(proto.spec)
            out.append(chart_table(e).to_pandas().to_csv())
    return "\n".join(out)


def chart_table(e) -> pa.Table:
    return pa.ipc.open_stream(e.proto.data.data).read_all()


def attack(at: AppTest) -> AppTest:
    at.button(key="attack_button").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_first_screen_attacks_standard_and_rat_and_tells_who_was_fooled(app: AppTest) -> None:
    at = app
    assert at.multiselect(key="models").value == list(logic.DEFAULT_MODELS)
    assert at.selectbox(key="gallery").value == logic.DEFAULT_IMAGE
    assert at.selectbox(key="attack").value == "pgd-linf"
    assert "EOT (Expectation over Transformation)" in page_text(at)
    attack(at)
    verdict = next(m.value for m in at.markdown if m.value.startswith("#### Verdict"))
    # the verdict is ratzoo's: the same attack through ratzoo.run_attack directly
    image = images.gallery_image(logic.DEFAULT_IMAGE)
    want = {}
    for name in logic.DEFAULT_MODELS:
        model = ratzoo.load(name)
        out = ratzoo.run_attack(model, image.tensor(), torch.tensor([image.label]), "pgd-linf", seed=0, eps=8 / 255,
                                steps=20, eot_samples=10)
        want[name] = "fooled" if bool(out.fooled[0]) else "held" if bool(out.robust[0]) else "wrong before the attack"
        shown = [m for m in at.markdown if f"total change (L2): **{float(out.l2[0]):.3f}**" in m.value
                 and f"largest pixel change (Linf): **{float(out.linf[0]) * 255:.2f}/255**" in m.value]
        assert shown, f"{name}'s L2 {float(out.l2[0]):.3f} is not on the page"
    assert want == {"standard": "fooled", "rat": "held"}  # the default image tells the story
    assert verdict == "#### Verdict: Standard fooled · RAT held"
    assert any(e.value.startswith("Fooled:") for e in at.error)
    assert any(s.value.startswith("Held:") for s in at.success)


def test_a_model_without_noise_is_not_described_by_noise_draws(app: AppTest) -> None:
    at = attack(app)
    captions = [c.value for c in at.caption if c.value.startswith("Class probabilities")]
    assert captions[0] == "Class probabilities: one prediction (this model has no noise)."
    k = ratzoo.DEFAULT_DECISION_SAMPLES
    assert re.fullmatch(rf"Class probabilities: the average over ({k} fresh noise draws|\d+ fresh noise draws "
                        rf"\(of up to {k}: more could not change the verdict\)), which decides\.", captions[1]), captions[1]
    visible = page_text(at, skip_developer=True)
    assert "over 1 " not in visible and "1 noise draws" not in visible and "whiskers" not in visible


def test_the_page_never_shows_a_server_path_or_a_code_name(app: AppTest) -> None:
    at = attack(app)
    text = page_text(at)
    for secret in {str(REPO), str(REPO.parent), os.path.expanduser("~"), "/work/", "checkpoints/"} - {"/"}:
        assert secret not in text, f"the page shows {secret!r}"
    visible = page_text(at, skip_developer=True).lower()
    for name in CODE_NAMES:
        assert name not in visible, f"the page shows the code name {name!r} outside the developer detail"


def test_developer_detail_and_settings_are_closed_by_default(app: AppTest) -> None:
    at = attack(app)
    expanders = {e.label: e.proto.expanded for e in at.get("expander")}
    dev = [k for k in expanders if "developers" in k]
    assert len(dev) >= 3 and not any(expanders[k] for k in dev)
    assert expanders["Attack settings"] is False


def test_no_norm_is_drawn_on_a_percentage_axis(app: AppTest) -> None:
    charts = app.get("vega_lite_chart")
    assert charts
    norm_settings = {m["name"] for m in ratzoo.list_models() for m in m.get("metrics", [])
                     if m["type"] == "median_l2_norm"}
    checked = 0
    for c in charts:
        table = chart_table(c)
        for col in table.column_names:
            if "%" in col:
                checked += 1
                assert max(table.column(col).to_pylist()) <= 100
                if "setting" in table.column_names:
                    assert not set(table.column("setting").to_pylist()) & norm_settings
    assert checked >= 1
    zoo = app.dataframe[0].value
    norm_cols = [c for c in zoo.columns if "L2" in c and "smallest" in c]
    assert norm_cols and all("%" not in c for c in norm_cols) and zoo[norm_cols[0]].max() < 5


def test_stop_leaves_a_stopped_state(app: AppTest) -> None:
    # what an attack interrupted by Stop (a rerun) leaves behind: its progress marker
    app.session_state["running"] = {"model": "RAT", "step": 79, "total": 1000}
    app.run()
    assert [w.value for w in app.warning] == [
        "Stopped on RAT at step 79 of 1000: the attack was interrupted and nothing was measured. "
        "Press Attack to start again."]
    app.run()  # the next rerun is a fresh state
    assert not app.warning


def test_the_uploader_shows_the_limit_it_enforces(app: AppTest) -> None:
    at = app
    at.radio(key="source").set_value("Upload your own").run()
    (uploader,) = at.get("file_uploader")
    assert uploader.proto.max_upload_size_mb == images.MAX_UPLOAD_MB
    with pytest.raises(images.InputError, match=f"up to {images.MAX_UPLOAD_MB} MB"):
        images.preprocess_upload(b"\0" * (images.MAX_UPLOAD_MB * 2**20 + 1), "big.png")
    images.preprocess_upload(_png(), "ok.png")  # a normal file passes


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (50, 40), (200, 10, 10)).save(buf, format="PNG")
    return buf.getvalue()


def test_lerat_is_described_by_its_learned_std(app: AppTest) -> None:
    at = app
    at.multiselect(key="models").set_value(["lerat"]).run()
    noise = next(m["noise"] for m in ratzoo.list_models() if m["name"] == "lerat")
    words = [c.value for c in at.caption if c.value.startswith("LeRAT")]
    assert words and f"std ended at mean {noise['learned_sigma_mean']:.2f}" in words[0]
    assert "sigma=1" not in page_text(at) and "noise with std 1" not in words[0]


def test_bad_settings_give_a_message_and_no_attack(app: AppTest) -> None:
    at = app
    at.number_input(key="eps_pgd-linf").set_value(0.0).run()
    assert any("out of range" in e.value for e in at.error)
    assert at.button(key="attack_button").disabled


def test_a_visitor_who_waits_for_a_worker_is_told(app: AppTest, monkeypatch) -> None:
    monkeypatch.setenv("RATZOO_APP_WORKERS", "1")
    pool = logic.shared_pool()
    assert pool.workers == 1
    held = threading.Event()

    def other_visitor() -> None:
        with pool.slot():
            held.set()
            time.sleep(2.0)

    t = threading.Thread(target=other_visitor)
    t.start()
    held.wait(5)
    at = attack(app)
    t.join()
    waited = [c.value for c in at.caption if c.value.startswith("You waited")]
    assert waited and "number 1 in the queue" in waited[0]


def test_cw_offers_no_budget_control_that_does_nothing(app: AppTest) -> None:
    """C&W has no budget: the old "Reference L2" input changed nothing; there is no such input now,
    and the result says so instead of comparing with a made-up reference."""
    at = app
    at.selectbox(key="attack").set_value("cw-l2").run()
    labels = [n.label for n in at.number_input]
    assert labels and not any("Budget" in lab or "Reference" in lab for lab in labels), labels
    at.number_input(key="steps_cw-l2").set_value(2).run()
    attack(at)
    assert any("no budget (C&W looks for the smallest change)" in m.value for m in at.markdown)


def test_models_are_offered_by_name_not_by_code(app: AppTest) -> None:
    ms = app.multiselect(key="models")
    shown = [o for o in ms.options]
    labels = [m["label"] + (f" ({m['reference']})" if m.get("reference") else "") for m in ratzoo.list_models()]
    assert shown == labels, shown  # "AT (Madry et al.)", "R.N. (Pinot et al.)", not "at", "rn"


@pytest.mark.parametrize("params", [
    {"image": "14", "models": "standard,rat,at", "attack": "pgd-linf", "steps": "20", "eot": "10"},  # docs/demo.md's link
    {"attack": "fgsm", "steps": "20"},
    {"steps": "-5", "eot": "0", "image": "-3"},
    {"steps": "500", "eot": "100000", "image": "999"},
])
def test_a_link_with_any_values_opens_the_page_and_every_attack_choice(params, monkeypatch) -> None:
    """Link values go to the widgets clamped to their ranges: a widget given a value out of its
    range raises, and the visitor of a shared link would see a traceback."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params.update(params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="attack").set_value("fgsm").run()  # its Steps input allows only 1
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="steps_fgsm").value == 1


# --------------------------------------------------------------------------- issue 28: the first click


def _order(at: AppTest) -> list[str]:
    """The attack tab's elements in page order, as short tags."""
    tags = []
    for e in walk(at.tabs[0]):
        t = getattr(e, "type", "")
        if t == "markdown" and str(e.value).startswith("#### Verdict"):
            tags.append("verdict")
        elif t == "button" and getattr(e, "label", "") == "Attack":
            tags.append("button")
        elif t == "radio" and getattr(e, "label", "") == "Image":
            tags.append("settings")
    return tags


def test_the_answer_comes_right_under_the_button_above_the_settings(app: AppTest) -> None:
    at = attack(app)
    assert _order(at) == ["button", "verdict", "settings"], _order(at)


def test_a_disabled_attack_button_says_why(app: AppTest) -> None:
    at = app
    at.radio(key="source").set_value("Upload your own").run()
    assert at.button(key="attack_button").disabled
    assert any(c.value == "Attack is off: upload an image first, or pick one from the gallery." for c in at.caption)
    at.multiselect(key="models").set_value([]).run()
    at.radio(key="source").set_value("Gallery").run()
    assert at.button(key="attack_button").disabled
    assert any(c.value == "Attack is off: choose at least one model." for c in at.caption)


def test_a_rejected_upload_leaves_the_uploader_and_its_reason_stays_until_the_next_choice(app: AppTest) -> None:
    at = app
    at.radio(key="source").set_value("Upload your own").run()
    at.get("file_uploader")[0].set_value(("notes.png", b"this is text, not a PNG", "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    (uploader,) = at.get("file_uploader")
    assert uploader.value is None  # the rejected file is not listed any more
    errors = [e.value for e in at.error]
    assert errors == ["notes.png is not an image the demo can read: upload a PNG, JPEG, GIF, BMP, TIFF or WebP file. "
                      "Nothing was attacked."], errors
    assert at.button(key="attack_button").disabled
    assert any(c.value.startswith("Attack is off: the file you chose could not be used") for c in at.caption)
    at.radio(key="source").set_value("Gallery").run()
    at.radio(key="source").set_value("Upload your own").run()
    assert not at.error  # an old error does not stay on screen
    at.get("file_uploader")[0].set_value(("red.png", _png(), "image/png")).run()
    assert not at.error and not at.button(key="attack_button").disabled
    captions = [i.caption for e in walk(at._tree) if getattr(e, "type", "") == "image" for i in e.proto.imgs]
    assert "your image red.png (true class unknown: each model is attacked on its own first answer)" in captions


def test_every_draw_count_on_the_page_is_the_one_the_decision_used(app: AppTest) -> None:
    at = app
    at.multiselect(key="models").set_value(["at", "rat"]).run()
    attack(at)
    details = [m.value for m in at.markdown if m.value.startswith("`ratzoo.run_attack`")]
    verdicts = [e.value for e in [*at.error, *at.success, *at.info] if e.value.startswith(("Fooled", "Held"))]
    assert len(details) == 2 and len(verdicts) == 2
    at_detail, rat_detail = details
    assert "no noise: one prediction decides" in at_detail and "noise draws per step used" not in at_detail
    assert "over 1 draws" not in at_detail
    drawn = re.search(r"the average over (\d+ fresh noise draws[^·]*?)(?: ·|$)", rat_detail).group(1).strip()
    assert any(drawn in v for v in verdicts), (drawn, verdicts)


def test_a_link_naming_an_unknown_model_says_so(monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.query_params["models"] = "rat,nosuch"
    at.run()
    assert at.multiselect(key="models").value == ["rat"]
    (w,) = [w.value for w in at.warning]
    assert "'nosuch'" in w and "Showing the others" in w and "standard" in w


def test_the_zoo_table_has_one_number_format_per_unit(app: AppTest) -> None:
    (table,) = [d for d in app.dataframe if "clean (%)" in d.value.columns]
    config = json.loads(table.proto.columns)
    formats = {c: config[c]["type_config"]["format"] for c in config if c != "_index"}
    assert formats["clean (%)"] == "%.1f" and formats["C&W median smallest change (L2)"] == "%.2f"
    assert all(f == "%.1f" for c, f in formats.items() if c.endswith("(%)"))
