"""The Streamlit demo driven headlessly by streamlit.testing.v1.AppTest on tiny checkpoints.

What is shown (predicted labels, norms, verdict) must be ratzoo's own result for the same
seed; bad input must give an error message, never an exception; widget changes must
never rerun an attack that was not asked for.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ratzoo
from app import logic
from ratzoo.evaluate import STREAM_ADV, STREAM_ATTACK, STREAM_CLEAN, derive_seed, evaluate

st = pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = Path(__file__).resolve().parent.parent / "app" / "streamlit_app.py"
TIMEOUT = 90  # seconds per script run: generous, the CPU may be busy training


@pytest.fixture(scope="module")
def zoo_root(tmp_path_factory) -> Path:
    """Tiny zoo: noisy 'rat', deterministic 'at', corrupt 'lerat'; 'standard' and 'rn' missing."""
    root = tmp_path_factory.mktemp("app_zoo")
    torch.manual_seed(0)
    ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.4).eval(), root / "rat",
                           results={"metrics": [{"name": "clean accuracy", "value": 0.5}]})
    ratzoo.save_checkpoint(ratzoo.build_model(width=2).eval(), root / "at")
    ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="learned", noise_sigma=0.4), root / "lerat")
    w = root / "lerat" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:300])  # truncated: corrupt
    return root


@pytest.fixture
def app(zoo_root, tiny_cifar_root, monkeypatch) -> AppTest:
    monkeypatch.setenv("RATZOO_CHECKPOINTS", str(zoo_root))
    monkeypatch.setenv("RATZOO_CIFAR10", str(tiny_cifar_root))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("RATZOO_RESULTS", raising=False)
    # Streamlit's caches are per process: another test's zoo or dataset must not leak in.
    st.cache_data.clear()
    st.cache_resource.clear()
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label.split(" (")[0]: m.value for m in at.metric}


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def reference(model: torch.nn.Module, x: torch.Tensor, y: int, attack: str, seed: int, **kw):
    """ratzoo's own result: the attack seeded as ratzoo.evaluate seeds it, and the two
    EOT predictions over 100 fresh draws."""
    adv = ratzoo.attacks.make_attack(attack, model, seed=derive_seed(seed, STREAM_ATTACK), **kw).run(
        x, torch.tensor([y]), estimate_success=False).adv_images
    clean = ratzoo.predict_proba(model, x, samples=100, seed=derive_seed(seed, STREAM_CLEAN))
    advp = ratzoo.predict_proba(model, adv, samples=100, seed=derive_seed(seed, STREAM_ADV))
    return adv, int(clean.label[0]), int(advp.label[0])


def test_attack_shows_ratzoos_result_within_budget_and_is_not_rerun(app: AppTest, zoo_root) -> None:
    at = app
    assert at.title[0].value == "ratzoo: attack a randomized classifier"
    at.selectbox(key="model").set_value("rat")
    at.radio(key="source").set_value("Gallery")
    at.selectbox(key="gallery").set_value(13)
    at.selectbox(key="attack").set_value("pgd-linf")
    at.run()
    at.number_input(key="eps_pgd-linf").set_value(6.0)
    at.number_input(key="steps_pgd-linf").set_value(4)
    at.number_input(key="eot").set_value(3)
    at.number_input(key="seed").set_value(11)
    at.run()
    assert not at.error, texts(at.error)
    at.button(key="attack_button").click().run()
    assert not at.exception and not at.error, texts(at.exception) + texts(at.error)

    image = logic.gallery_image(13)
    x, y = image.tensor(), image.label
    model = ratzoo.load(zoo_root / "rat")
    adv, clean_label, adv_label = reference(model, x, y, "pgd-linf", 11, eps=6 / 255, steps=4, eot_samples=3)
    d = (adv - x).double()
    shown = metrics(at)
    assert shown["clean prediction"] == logic.CLASSES[clean_label]
    assert shown["adversarial prediction"] == logic.CLASSES[adv_label]
    assert shown["Linf"] == f"{float(d.abs().max()) * 255:.3f}/255"
    assert shown["L2"] == f"{float(d.flatten().norm()):.4f}"
    assert shown["L0"] == f"{int((d.abs() > 1e-6).sum())} / 3072"
    assert float(shown["Linf"].split("/")[0]) <= 6.0 + 1e-3  # within the budget, as shown
    assert "within the Linf budget 6/255" in texts(at.caption)
    # the verdict is the evaluator's
    rec = evaluate(model, x, torch.tensor([y]), "pgd-linf", seed=11, eps=6 / 255, steps=4, eot_samples=3)
    verdict = texts(at.success) + texts(at.warning) + texts(at.info)
    if rec["clean_accuracy"] == 0:
        assert "Already misclassified" in verdict
    elif rec["robust_accuracy"] == 0:
        assert "Attack succeeded" in verdict
    else:
        assert "Attack failed" in verdict
    assert len(at.image) >= 4  # the chosen image, then original / adversarial / perturbation
    captions = [c for i in at.image for c in i.captions]
    assert f"adversarial: {logic.CLASSES[adv_label]}" in captions
    amp = 0.5 / float(d.abs().max())
    assert f"perturbation, amplified x{amp:.1f} (gray = no change)" in captions
    assert at.session_state["attacks_run"] == 1

    # moving widgets afterwards never reruns the attack; the old result stays, flagged
    at.number_input(key="steps_pgd-linf").set_value(7).run()
    at.selectbox(key="model").set_value("at").run()
    assert at.session_state["attacks_run"] == 1
    assert metrics(at) == shown
    assert "settings changed" in texts(at.info)


def test_index_on_a_deterministic_model(app: AppTest, zoo_root, tiny_cifar_root) -> None:
    at = app
    at.selectbox(key="model").set_value("at")
    at.radio(key="source").set_value("CIFAR-10 test image by index")
    at.selectbox(key="attack").set_value("fgsm")
    at.run()
    at.number_input(key="index").set_value(7).run()
    assert at.number_input(key="eot_deterministic").disabled  # no noise: no EOT to choose
    at.button(key="attack_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    images, labels = ratzoo.load_cifar10("test", root=tiny_cifar_root)
    x = logic.to_tensor(np.asarray(images[7]))
    model = ratzoo.load(zoo_root / "at")
    adv, clean_label, adv_label = reference(model, x, int(labels[7]), "fgsm", 0, eps=8 / 255)
    with torch.no_grad():
        assert clean_label == int(model(x).argmax())
    shown = metrics(at)
    assert shown["clean prediction"] == logic.CLASSES[clean_label]
    assert shown["adversarial prediction"] == logic.CLASSES[adv_label]
    assert float(shown["Linf"].split("/")[0]) == pytest.approx(float((adv - x).abs().max()) * 255, abs=1e-3)
    assert float(shown["Linf"].split("/")[0]) <= 8.0 + 1e-3
    assert "CIFAR-10 test #7" in texts(at.caption)


def test_index_falls_back_to_the_gallery_when_cifar_is_absent(app: AppTest, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("RATZOO_CIFAR10", str(tmp_path / "no_cifar_here"))
    st.cache_data.clear()
    at = app
    _, records, _ = logic.load_gallery()
    at.radio(key="source").set_value("CIFAR-10 test image by index").run()
    at.number_input(key="index").set_value(records[9]["index"]).run()
    assert not at.exception and not at.error, texts(at.error)
    assert "not available here" in texts(at.caption) and "gallery" in texts(at.caption)
    absent = next(i for i in range(10000) if logic.gallery_position_of(i, records) is None)
    at.number_input(key="index").set_value(absent).run()
    assert not at.exception
    assert f"#{absent} is not in the bundled gallery" in texts(at.error)
    assert at.button(key="attack_button").disabled


def test_bad_inputs_give_error_messages_not_exceptions(app: AppTest) -> None:
    at = app
    at.selectbox(key="attack").set_value("pgd-linf").run()
    at.number_input(key="eps_pgd-linf").set_value(100.0).run()
    assert not at.exception
    assert "out of range" in texts(at.error) and "32/255" in texts(at.error)
    assert at.button(key="attack_button").disabled
    at.number_input(key="eps_pgd-linf").set_value(8.0).run()
    assert not at.error

    at.radio(key="source").set_value("Upload your own").run()
    assert "Upload an image" in texts(at.info) and at.button(key="attack_button").disabled
    for content, expected in ((b"just some text\n" * 50, "not an image"), (b"", "empty"),
                              (b"\0" * (logic.MAX_UPLOAD_BYTES + 1), "MiB")):
        at.file_uploader(key="upload").set_value(("notes.png", content, "image/png")).run()
        assert not at.exception, texts(at.exception)
        assert expected in texts(at.error)
        assert at.button(key="attack_button").disabled

    at.radio(key="source").set_value("Gallery").run()
    at.selectbox(key="model").set_value("lerat").run()  # corrupt checkpoint
    assert not at.exception
    assert "Model 'lerat' cannot be used" in texts(at.error)
    assert at.button(key="attack_button").disabled
    at.selectbox(key="model").set_value("standard").run()  # not trained yet
    assert not at.exception
    assert "no trained checkpoint" in texts(at.error)
    at.selectbox(key="model").set_value("rat").run()
    assert not at.error and not at.button(key="attack_button").disabled


def test_upload_is_resized_with_the_choice_shown_and_attacked(app: AppTest) -> None:
    at = app
    at.selectbox(key="model").set_value("rat")
    at.radio(key="source").set_value("Upload your own").run()
    rgba = np.zeros((60, 100, 4), np.uint8)
    rgba[..., 1] = 180
    rgba[:, :50, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buf, format="PNG")
    at.file_uploader(key="upload").set_value(("leaf.png", buf.getvalue(), "image/png"))
    at.radio(key="fit").set_value("pad")
    at.selectbox(key="upload_label").set_value("frog")
    at.run()
    assert not at.exception and not at.error, texts(at.error)
    note = texts(at.caption)
    assert "leaf.png: 100x60 RGBA" in note and "composited onto white" in note and "padded with gray to 100x100" in note
    at.selectbox(key="attack").set_value("pgd-l2").run()
    at.number_input(key="steps_pgd-l2").set_value(3)
    at.number_input(key="eot").set_value(2)
    at.button(key="attack_button").click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert float(metrics(at)["L2"]) <= 0.5 + 1e-4
    verdict = texts(at.success) + texts(at.warning) + texts(at.info)
    assert "frog" in verdict and "true label" in verdict


def test_compare_all_models(app: AppTest) -> None:
    at = app
    at.selectbox(key="attack").set_value("fgsm").run()
    at.button(key="compare_button").click().run()
    assert not at.exception, texts(at.exception)
    table = at.dataframe[0].value
    assert set(table["model"]) == {"at", "rat"}
    assert (table["Linf (/255)"] <= 8.0 + 1e-3).all() and table["within budget"].all()
    truth = logic.CLASSES[logic.gallery_image(0).label]  # the default gallery image
    assert (table["robust"] == ((table["clean prediction"] == truth) & (table["adversarial prediction"] == truth))).all()
    assert (table["clean correct"] == (table["clean prediction"] == truth)).all()
    assert dict(zip(table["model"], table["EOT samples"])) == {"at": 1, "rat": 10}
    assert "lerat:" in texts(at.error)  # the corrupt checkpoint is reported, the rest compared
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")


def test_results_page_reads_results_json_and_survives_garbage(app: AppTest, zoo_root) -> None:
    at = app
    assert "No measured results yet" in texts(at.info)
    report = pytest.importorskip("train.report")
    rec = lambda acc, **kw: {"n": 20, "clean_accuracy": 0.6, "clean_accuracy_ci95": [0.4, 0.8],  # noqa: E731
                             "robust_accuracy": acc, "robust_accuracy_ci95": [0.1, 0.6], "randomized": True,
                             "effective_eot_samples": 10, "eot_samples": 10, **kw}
    results = report.build_results({"rat": {"clean": rec(0.6), "pgd20_linf_8": rec(0.3), "pgd20_linf_4": rec(0.45, stage="fig3"),
                                            "pgd20_linf_8_eot5": rec(0.35, stage="fig4"),
                                            "cw_l2": rec(0.0, norms={"median": 0.5}, norms_per_image=[0.4, 0.6])}},
                                   {"rat": {"kind": "certify", "n": 20, "params": {"n": 1000, "alpha": 0.001},
                                            "noise": {"layer": 1, "sigma_min": 0.4}, "lipschitz": {"value": 12.5},
                                            "certified_accuracy": {"0": 0.55, "0.1": 0.2}, "images": []}})
    folder = zoo_root / "results"
    folder.mkdir(exist_ok=True)
    try:
        (folder / "results.json").write_text(json.dumps(results))
        (folder / "broken.json").write_text("{oops")
        st.cache_data.clear()
        at.run()
        assert not at.exception, texts(at.exception)
        assert "broken.json" in texts(at.warning)
        charts = at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
        assert len(charts) >= 5  # zoo table, Fig. 3, Fig. 4, Fig. 5, the paper's Table 2
        assert "PGD-20 Linf 8/255" in str([c.proto for c in charts])
        frames = [df.value for df in at.dataframe]
        cert = [f for f in frames if "certified @0.1" in f.columns]
        assert len(cert) == 1 and cert[0]["L"].tolist() == [12.5] and cert[0]["certified @0.1"].tolist() == [0.2]
        fig5 = [str(e.value) for e in at.markdown if "the paper's Figure 5" in str(e.value)]
        assert len(fig5) == 1 and "examples per model: rat 2" in fig5[0] and "not a robustness measure" in fig5[0]
    finally:
        for f in folder.iterdir():
            f.unlink()
        folder.rmdir()
