"""The demo's pure logic (app/logic.py, app/charts.py): uploads, norms, budgets, the attack
verdict against ratzoo.evaluate, certificates, gallery, results files. No Streamlit."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ratzoo
from app import charts, logic
from ratzoo.evaluate import STREAM_ADV, STREAM_ATTACK, STREAM_CLEAN, derive_seed, evaluate


def encode(im: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


# --------------------------------------------------------------------------- uploads


def test_upload_large_rgb_is_center_cropped_and_downsampled() -> None:
    # left half red, right half blue, a green band in the middle third: the crop keeps the middle
    a = np.zeros((300, 600, 3), np.uint8)
    a[:, :300, 0] = 255
    a[:, 300:, 2] = 255
    a[:, 200:400, :] = (0, 255, 0)
    img = logic.preprocess_upload(encode(Image.fromarray(a)), "wide.png")
    assert img.pixels.shape == (32, 32, 3) and img.pixels.dtype == np.uint8
    assert img.label is None
    assert "600x300 RGB" in img.note and "center-cropped to 300x300" in img.note and "32x32" in img.note
    # the central 300x300 square is 1/6 red, 2/3 green, 1/6 blue
    assert img.pixels[16, 16, 1] > 200 and img.pixels[16, 0, 0] > 150 and img.pixels[16, 31, 2] > 150


def test_upload_stretch_and_pad_keep_what_they_say() -> None:
    a = np.full((10, 40, 3), 255, np.uint8)  # white, 4:1
    pad = logic.preprocess_upload(encode(Image.fromarray(a)), "w.png", fit="pad")
    assert "padded with gray to 40x40" in pad.note
    assert abs(int(pad.pixels[0, 16, 0]) - 128) <= 2 and pad.pixels[16, 16].min() > 240  # gray border, white middle
    st = logic.preprocess_upload(encode(Image.fromarray(a)), "w.png", fit="stretch")
    assert "stretched" in st.note and st.pixels.min() > 240  # all white: nothing added


def test_upload_rgba_is_composited_on_white() -> None:
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., 0] = 255  # red ...
    a[:, :32, 3] = 0  # ... transparent on the left half
    a[:, 32:, 3] = 255
    img = logic.preprocess_upload(encode(Image.fromarray(a, "RGBA")), "t.png")
    assert "composited onto white" in img.note
    assert tuple(img.pixels[16, 2]) == (255, 255, 255)
    assert tuple(img.pixels[16, 29]) == (255, 0, 0)


@pytest.mark.parametrize("mode", ["L", "1", "I;16", "LA", "P"])
def test_upload_grayscale_and_palette_modes_give_rgb(mode: str) -> None:
    g = (np.arange(48 * 48).reshape(48, 48) % 256).astype(np.uint8)
    if mode == "I;16":
        im = Image.fromarray(g.astype(np.uint16) * 257)  # 16-bit grayscale
        assert im.mode.startswith("I")
    elif mode == "LA":
        im = Image.fromarray(np.stack([g, np.full_like(g, 255)], -1), "LA")
    else:
        im = Image.fromarray(g, "L").convert(mode)
    img = logic.preprocess_upload(encode(im), f"{mode}.png")
    assert img.pixels.shape == (32, 32, 3)
    if mode != "P":
        assert np.array_equal(img.pixels[..., 0], img.pixels[..., 1]) and np.array_equal(img.pixels[..., 1], img.pixels[..., 2])
        assert img.pixels.max() > 100  # 16-bit data scaled to 8 bits, not saturated or zeroed
    assert "32x32" in img.note


def test_upload_tiny_image_is_upsampled_and_gif_uses_first_frame() -> None:
    tiny = logic.preprocess_upload(encode(Image.new("RGB", (4, 4), (10, 200, 30))), "tiny.png")
    assert "upsampled to 32x32" in tiny.note and tuple(tiny.pixels[5, 5]) == (10, 200, 30)
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    gif = logic.preprocess_upload(buf.getvalue(), "anim.gif")
    assert "first of 2 frames" in gif.note and gif.pixels[..., 0].mean() > 200


def test_upload_jpeg_with_exif_rotation_is_turned_upright() -> None:
    im = Image.new("RGB", (60, 30), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 30, 30))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img = logic.preprocess_upload(encode(im, "JPEG", exif=exif, quality=95), "photo.jpg")
    assert "EXIF" in img.note
    # displayed upright the image is 30 wide and 60 tall, white at the top
    assert img.pixels[:8].mean() > 200 and img.pixels[-8:].mean() < 50


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"hello, this is a text file\n" * 10, "not an image"),
        (None, "not an image"),  # a truncated PNG, built below
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "not an image"),
    ],
)
def test_bad_uploads_raise_a_clear_input_error(data: bytes | None, message: str) -> None:
    if data is None:
        data = encode(Image.new("RGB", (64, 64), (1, 2, 3)))[:60]
    with pytest.raises(logic.InputError, match=message):
        logic.preprocess_upload(data, "bad.png")


def test_huge_uploads_are_refused_before_decoding() -> None:
    with pytest.raises(logic.InputError, match="MiB"):
        logic.preprocess_upload(b"\0" * (logic.MAX_UPLOAD_BYTES + 1), "big.bin")
    # a small file that decodes to 64 megapixels
    bomb = encode(Image.new("1", (8000, 8000)))
    assert len(bomb) < logic.MAX_UPLOAD_BYTES
    with pytest.raises(logic.InputError, match="pixels"):
        logic.preprocess_upload(bomb, "bomb.png")


def test_unknown_fit_mode_is_an_input_error() -> None:
    with pytest.raises(logic.InputError, match="resize mode"):
        logic.preprocess_upload(encode(Image.new("RGB", (8, 8))), "x.png", fit="zoom")


# --------------------------------------------------------------------------- norms, budgets, display


def test_norms_of_a_known_perturbation() -> None:
    x = torch.full((1, 3, 32, 32), 0.5)
    adv = x.clone()
    adv[0, 0, 3, 4] += 0.1
    adv[0, 2, 3, 4] -= 0.2  # same pixel, another channel
    adv[0, 1, 10, 10] += 0.05
    n = logic.perturbation_norms(x, adv)
    assert n.linf == pytest.approx(0.2, abs=1e-6)
    assert n.l2 == pytest.approx(math.sqrt(0.01 + 0.04 + 0.0025), abs=1e-6)
    assert (n.l0, n.l0_pixels) == (3, 2)
    assert n.linf_255 == pytest.approx(51.0, abs=1e-4)
    zero = logic.perturbation_norms(x, x.clone())
    assert (zero.linf, zero.l2, zero.l0) == (0.0, 0.0, 0)


def test_within_budget_is_true_exactly_up_to_the_budget() -> None:
    spec = logic.validate_spec("pgd-linf", 8, 10, 1, 0, randomized=False)
    assert logic.within_budget(logic.Norms(8 / 255, 1.0, 10, 5), spec) is True
    assert logic.within_budget(logic.Norms(8.1 / 255, 1.0, 10, 5), spec) is False
    l2 = logic.validate_spec("pgd-l2", 0.5, 10, 1, 0, randomized=False)
    assert logic.within_budget(logic.Norms(1.0, 0.5, 10, 5), l2) is True
    assert logic.within_budget(logic.Norms(0.01, 0.51, 10, 5), l2) is False
    cw = logic.validate_spec("cw-l2", 0.5, 10, 1, 0, randomized=False)
    assert logic.within_budget(logic.Norms(1.0, 9.0, 10, 5), cw) is None


def test_perturbation_image_amplification_reaches_full_range() -> None:
    x = torch.full((1, 3, 32, 32), 0.5)
    adv = x.clone()
    adv[0, 0, 0, 0] += 4 / 255
    adv[0, 1, 0, 1] -= 2 / 255
    img, amp = logic.perturbation_image(x, adv)
    assert amp == pytest.approx(0.5 / (4 / 255), rel=1e-4)
    assert img[0, 0, 0] == 255 and img[0, 1, 1] == 64 and img[5, 5, 0] == 128  # -2/255 * amp = -0.25
    gray, amp0 = logic.perturbation_image(x, x.clone())
    assert amp0 == 1.0 and np.all(gray == 128)


def test_enlarge_is_nearest_neighbour() -> None:
    px = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    big = logic.enlarge(px, 8)
    assert big.shape == (256, 256, 3)
    assert np.array_equal(big[::8, ::8], px) and np.array_equal(big[7::8, 7::8], px)


def test_to_tensor_to_uint8_round_trip() -> None:
    px = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    t = logic.to_tensor(px)
    assert t.shape == (1, 3, 32, 32) and float(t.max()) <= 1.0
    assert np.array_equal(logic.to_uint8(t), px)


# --------------------------------------------------------------------------- attack settings


@pytest.mark.parametrize(
    "attack, eps, steps, eot, seed, match",
    [
        ("pgd-linf", 100, 10, 5, 0, r"out of range.*0\.5/255 and 32/255"),
        ("pgd-linf", 0, 10, 5, 0, "out of range"),
        ("pgd-linf", float("nan"), 10, 5, 0, "out of range"),
        ("pgd-linf", "eight", 10, 5, 0, "must be a number"),
        ("pgd-l2", 50.0, 10, 5, 0, r"L2 eps.*between 0\.01 and 5"),
        ("pgd-linf", 8, 0, 5, 0, "steps = 0 is out of range"),
        ("pgd-linf", 8, 10000, 5, 0, "steps = 10000 is out of range"),
        ("pgd-linf", 8, 2.5, 5, 0, "whole number"),
        ("pgd-linf", 8, 10, 1000, 0, "EOT samples = 1000 is out of range"),
        ("pgd-linf", 8, 10, 5, -1, "seed = -1"),
        ("deepfool", 8, 10, 5, 0, "unknown attack"),
    ],
)
def test_validate_spec_rejects_bad_settings(attack, eps, steps, eot, seed, match) -> None:
    with pytest.raises(logic.InputError, match=match):
        logic.validate_spec(attack, eps, steps, eot, seed, randomized=True)


def test_validate_spec_units_and_deterministic_models() -> None:
    s = logic.validate_spec("pgd-linf", 8, 20, 10, 3, randomized=True)
    assert s.eps == pytest.approx(8 / 255) and (s.steps, s.eot_samples, s.seed) == (20, 10, 3)
    assert "8/255" in s.describe() and "EOT 10" in s.describe()
    det = logic.validate_spec("pgd-linf", 8, 20, 10000, 3, randomized=False)  # EOT is moot: forced to 1
    assert det.eot_samples == 1
    assert logic.validate_spec("fgsm", 8, 999, 1, 0, randomized=False).steps == 1  # one step whatever is typed
    l2 = logic.validate_spec("pgd-l2", 0.5, 20, 1, 0, randomized=False)
    assert l2.eps == 0.5 and "eps 0.5" in l2.describe()


def test_every_demo_attack_exists_in_ratzoo() -> None:
    assert set(logic.available_attacks()) == set(logic.ATTACKS)


# --------------------------------------------------------------------------- models


@pytest.fixture
def zoo_dir(tmp_path, monkeypatch) -> Path:
    """$RATZOO_CHECKPOINTS with a noisy 'rat', a deterministic 'at' and a corrupt 'lerat'."""
    root = tmp_path / "zoo"
    torch.manual_seed(0)
    ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.5).eval(), root / "rat",
                           results={"metrics": [{"name": "clean accuracy", "value": 0.8125}]})
    ratzoo.save_checkpoint(ratzoo.build_model(width=2).eval(), root / "at")
    ratzoo.save_checkpoint(ratzoo.build_model(width=2, noise_kind="learned", noise_sigma=0.5), root / "lerat")
    w = root / "lerat" / "model.safetensors"
    w.write_bytes(w.read_bytes()[:200])
    monkeypatch.setenv("RATZOO_CHECKPOINTS", str(root))
    return root


def test_load_model_errors_are_model_unavailable(zoo_dir) -> None:
    assert logic.load_model("rat").randomized and not logic.load_model("at").randomized
    with pytest.raises(logic.ModelUnavailable, match="no trained checkpoint"):
        logic.load_model("standard")
    with pytest.raises(logic.ModelUnavailable, match="sha256|safetensors|truncated"):
        logic.load_model("lerat")
    with pytest.raises(logic.ModelUnavailable, match="unknown model"):
        logic.load_model("nonexistent")


def test_zoo_rows_show_availability_and_headline_numbers(zoo_dir) -> None:
    rows = {r["model"]: r for r in logic.zoo_rows()}
    assert rows["rat"]["available"] and rows["rat"]["clean accuracy (%)"] == 81.25
    assert "fixed sigma=0.5 (layer 1)" == rows["rat"]["noise"]
    assert not rows["standard"]["available"]
    assert "81.2%" in logic.model_option_label(rows["rat"]) or "81.3%" in logic.model_option_label(rows["rat"])
    assert "not trained yet" in logic.model_option_label(rows["standard"])


# --------------------------------------------------------------------------- the attack against ratzoo's own result


@pytest.fixture(scope="module")
def noisy() -> logic.LoadedModel:
    torch.manual_seed(1)
    return logic.LoadedModel("noisy", ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.3).eval(), True)


@pytest.mark.parametrize("attack, eps", [("pgd-linf", 8), ("pgd-l2", 0.5), ("fgsm", 4), ("apgd", 8)])
def test_run_attack_matches_ratzoo_attack_and_evaluator(noisy, attack, eps) -> None:
    image = logic.gallery_image(5)
    spec = logic.validate_spec(attack, eps, 3, 4, 7, randomized=True)
    out = logic.run_attack(noisy, image, spec)
    x, y = image.tensor(), torch.tensor([image.label])
    # the adversarial image is ratzoo's own, seeded as ratzoo.evaluate seeds it
    name = logic.available_attacks()[attack].names[0]
    kw = dict(eps=spec.eps, eot_samples=4, seed=derive_seed(7, STREAM_ATTACK))
    if attack != "fgsm":
        kw["steps"] = 3
    ref = ratzoo.attacks.make_attack(name, noisy.model, **kw).run(x, y, estimate_success=False).adv_images
    assert torch.equal(out.adv, ref)
    # predictions are ratzoo's EOT predictions over 100 fresh draws on independent streams
    clean = ratzoo.predict_proba(noisy.model, x, samples=100, seed=derive_seed(7, STREAM_CLEAN))
    adv = ratzoo.predict_proba(noisy.model, ref, samples=100, seed=derive_seed(7, STREAM_ADV))
    assert out.clean_label == int(clean.label[0]) and out.adv_label == int(adv.label[0])
    assert torch.equal(out.adversarial.votes, adv.votes)
    # budget respected, norms are those of adv - x
    assert out.within_budget is True
    norm = out.norms.linf if spec.info.norm == "Linf" else out.norms.l2
    assert norm <= spec.eps + 1e-6
    assert out.norms.l2 == pytest.approx(float((ref - x).flatten().norm()), rel=1e-5)
    # the verdict is the evaluator's for this image and seed
    rec = evaluate(noisy.model, x, y, name, seed=7, **{k: v for k, v in kw.items() if k != "seed"})
    assert rec["robust_accuracy"] == float(out.clean_correct and not out.success)
    assert rec["clean_accuracy"] == float(out.clean_correct)


def test_run_attack_on_an_upload_attacks_the_clean_prediction_and_reports_progress(noisy) -> None:
    up = logic.preprocess_upload(encode(Image.new("RGB", (50, 40), (200, 30, 60))), "u.png")
    seen: list[tuple[float, str]] = []
    out = logic.run_attack(noisy, up, logic.validate_spec("pgd-linf", 8, 4, 2, 0, True),
                           progress=lambda f, t: seen.append((f, t)))
    assert out.label == out.clean_label and not out.label_is_true
    steps = [f for f, t in seen if "step" in t]
    assert steps == [0.25, 0.5, 0.75, 1.0]  # one tick per gradient step
    assert "fresh noise draws" in seen[-1][1]  # then the judging


def test_cw_outcome_reports_found_and_has_no_budget(noisy) -> None:
    spec = logic.validate_spec("cw-l2", 0.5, 5, 2, 0, randomized=True)
    out = logic.run_attack(noisy, logic.gallery_image(0), spec)
    assert out.within_budget is None and out.found in (True, False)
    if not out.found:
        assert torch.equal(out.adv, out.x)


def test_certificate_is_computed_and_never_contradicted(noisy) -> None:
    if not logic.certify_available():
        pytest.skip("ratzoo.certify is not available")
    spec = logic.validate_spec("pgd-l2", 2.0, 5, 4, 0, randomized=True)
    out = logic.run_attack(noisy, logic.gallery_image(3), spec, certify={"n0": 50, "n": 300, "alpha": 0.01})
    c = out.certificate
    assert c is not None and c["lipschitz"] > 0 and c["n"] == 300
    level, msg = logic.certificate_check(out)
    assert level in ("ok", "info"), msg
    if level == "ok":
        assert out.norms.l2 >= c["radius"]


def _outcome_with(noisy, certificate, adv_votes_class: int, l2: float) -> logic.AttackOutcome:
    """A synthetic outcome: the adversarial's single draws all vote ``adv_votes_class``."""
    probs = torch.full((1, 10), 0.01)
    probs[0, adv_votes_class] = 0.91
    votes = torch.zeros(1, 10, dtype=torch.int64)
    votes[0, adv_votes_class] = 100
    adv_pred = ratzoo.EOTPrediction(probs, torch.zeros_like(probs), votes, 100)
    clean_probs = torch.full((1, 10), 0.01)
    clean_probs[0, 3] = 0.91
    clean_votes = torch.zeros(1, 10, dtype=torch.int64)
    clean_votes[0, 3] = 100
    clean = ratzoo.EOTPrediction(clean_probs, torch.zeros_like(clean_probs), clean_votes, 100)
    x = torch.zeros(1, 3, 32, 32)
    return logic.AttackOutcome(
        "m", logic.validate_spec("pgd-l2", 1.0, 5, 1, 0, True), "s", x, x, 3, True, clean, adv_pred,
        logic.Norms(0.1, l2, 10, 5), True, adv_votes_class != 3, True, 0.0, 0.0, certificate)


def test_certificate_check_flags_an_adversarial_inside_the_radius(noisy) -> None:
    cert = {"label": 3, "radius": 0.8, "p_lower": 0.9, "lipschitz": 1.0, "sigma": 0.5, "n0": 100, "n": 1000, "alpha": 0.001}
    assert logic.certificate_check(_outcome_with(noisy, cert, 5, 0.5))[0] == "violation"
    assert logic.certificate_check(_outcome_with(noisy, cert, 5, 0.9))[0] == "ok"
    assert logic.certificate_check(_outcome_with(noisy, cert, 3, 0.5))[0] == "info"  # vote unchanged
    abstain = {**cert, "label": -1, "radius": 0.0}
    assert logic.certificate_check(_outcome_with(noisy, abstain, 5, 0.5))[0] == "info"
    assert logic.certificate_check(_outcome_with(noisy, None, 5, 0.5)) is None


def test_compare_models_reports_unavailable_models_and_uses_eot_only_when_noisy(noisy) -> None:
    torch.manual_seed(2)
    det = logic.LoadedModel("det", ratzoo.build_model(width=2).eval(), False)

    def load(name: str) -> logic.LoadedModel:
        if name == "broken":
            raise logic.ModelUnavailable("corrupt checkpoint")
        return {"noisy": noisy, "det": det}[name]

    base = logic.validate_spec("pgd-linf", 8, 2, 3, 0, True)
    rows = logic.compare_models(
        ["noisy", "broken", "det"], load, logic.gallery_image(1),
        lambda randomized: logic.AttackSpec(base.attack, base.eps, base.steps, base.eot_samples if randomized else 1, 0))
    by = {r["model"]: r for r in rows}
    assert by["broken"] == {"model": "broken", "problem": "corrupt checkpoint"}
    assert by["noisy"]["EOT samples"] == 3 and by["det"]["EOT samples"] == 1
    assert all(by[m]["within budget"] and by[m]["Linf (/255)"] <= 8.0 + 1e-3 for m in ("noisy", "det"))
    chart = charts.compare_chart([by["noisy"], by["det"]]).to_dict()
    assert chart["mark"]["type"] == "bar"


def test_chart_data_is_consistent_with_the_predictions(noisy) -> None:
    out = logic.run_attack(noisy, logic.gallery_image(2), logic.validate_spec("pgd-linf", 8, 2, 2, 0, True))
    probs = logic.probs_table(out)
    assert len(probs) == 20
    assert sum(r["mean probability"] for r in probs if r["image"] == "clean") == pytest.approx(1.0, abs=1e-5)
    assert all(r["low"] <= r["mean probability"] <= r["high"] for r in probs)
    votes = logic.votes_table(out)
    assert sum(r["draws"] for r in votes if r["image"] == "adversarial") == 100
    # the charts are valid Vega-Lite (altair validates on to_dict)
    charts.probs_chart(probs, 100).to_dict()
    charts.votes_chart(votes, 100).to_dict()


# --------------------------------------------------------------------------- gallery


def test_gallery_has_four_images_per_class() -> None:
    images, records, source = logic.load_gallery()
    assert images.shape == (40, 32, 32, 3) and images.dtype == np.uint8
    assert [sum(r["label"] == c for r in records) for c in range(10)] == [4] * 10
    assert all(r["class"] == logic.CLASSES[r["label"]] for r in records)
    assert "CIFAR-10" in source
    assert logic.gallery_position_of(records[7]["index"], records) == 7
    assert logic.gallery_position_of(10**6, records) is None
    with pytest.raises(logic.InputError, match="out of range"):
        logic.gallery_image(40)


def test_gallery_pixels_are_the_test_set_pixels(cifar_root) -> None:
    """The sprite is lossless: every tile equals its CIFAR-10 test image (in the copy it was made from)."""
    images, labels = ratzoo.load_cifar10("test", root=cifar_root)
    tiles, records, _ = logic.load_gallery()
    for tile, r in zip(tiles, records):
        assert labels[r["index"]] == r["label"]
        assert np.array_equal(tile, images[r["index"]])


def test_cifar_image_by_index_checks_the_range() -> None:
    imgs = np.zeros((5, 32, 32, 3), np.uint8)
    labels = np.array([0, 1, 2, 3, 4])
    assert logic.cifar_image(3, imgs, labels).label == 3
    for bad in (-1, 5, True, 2.0):
        with pytest.raises(logic.InputError, match="between 0 and 4"):
            logic.cifar_image(bad, imgs, labels)


# --------------------------------------------------------------------------- results files


def _record(model, attack, acc, eps=None, **extra):
    torch.manual_seed(0)
    return {"model": model, "attack": attack, "params": {"attack": attack, "eps": eps, "steps": 20},
            "n": 100, "clean_accuracy": 0.8, "robust_accuracy": acc, "robust_accuracy_ci95": [acc - 0.05, acc + 0.05],
            "effective_eot_samples": 10, **extra}


def test_load_results_handles_absence_garbage_records_and_tables(tmp_path) -> None:
    assert logic.load_results(tmp_path / "nope") == []
    (tmp_path / "broken.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("{}")
    (tmp_path / "grid.json").write_text(json.dumps({"description": "grid", "rows": [
        {"sigma": 0.25, "clean": 0.7, "score": 0.5}, {"sigma": 0.5, "clean": 0.6, "score": 0.55}]}))
    (tmp_path / "rat__pgd.json").write_text(json.dumps(_record("preact(w16)", "pgd-linf", 0.4, eps=8 / 255)))
    (tmp_path / "cw.json").write_text(json.dumps(_record("rat", "cw-l2", 0.0, accuracy_at={
        "0.25": {"accuracy": 0.6, "ci95": [0.5, 0.7]}, "0.5": {"accuracy": 0.3, "ci95": [0.2, 0.4]}})))
    files = {f.name: f for f in logic.load_results(tmp_path, skip=("results.json",))}
    assert "not readable JSON" in files["broken.json"].problem
    assert files["empty.json"].problem
    assert files["grid.json"].tables["rows"][1]["sigma"] == 0.5 and files["grid.json"].description == "grid"
    (pgd,) = files["rat__pgd.json"].measurements
    assert pgd["model"] == "rat" and pgd["robust_accuracy"] == 0.4 and pgd["setting"] == "pgd-linf 8/255, 20 steps, EOT 10"
    assert (pgd["ci_low"], pgd["ci_high"]) == pytest.approx((0.35, 0.45))
    cw = files["cw.json"].measurements
    assert [(r["eps"], r["robust_accuracy"]) for r in cw] == [(0.25, 0.6), (0.5, 0.3)]
    assert cw[0]["setting"].startswith("cw-l2 L2 <= 0.25")
    charts.results_chart(pgd and [pgd, *cw]).to_dict()
    assert charts.table_line_chart(files["grid.json"].tables["rows"]) is not None


def test_load_zoo_results_reads_what_train_report_writes(tmp_path) -> None:
    report = pytest.importorskip("train.report")
    rec = lambda key, acc, **kw: {"key": key, "n": 50, "clean_accuracy": 0.8, "clean_accuracy_ci95": [0.7, 0.9],  # noqa: E731
                                  "robust_accuracy": acc, "robust_accuracy_ci95": [acc - 0.1, acc + 0.1],
                                  "randomized": True, "effective_eot_samples": 10, "eot_samples": 10, **kw}
    records = {
        "rat": {"clean": rec("clean", 0.8), "pgd20_linf_8": rec("pgd20_linf_8", 0.4),
                "pgd20_linf_2": rec("pgd20_linf_2", 0.7, stage="fig3"),
                "pgd20_linf_8_sweep": rec("pgd20_linf_8_sweep", 0.4, stage="fig3"),
                "pgd20_linf_8_eot5": rec("x", 0.45, stage="fig4"),
                "cw_l2": rec("cw_l2", 0.0, accuracy_at={"0.5": {"accuracy": 0.3, "ci95": [0.2, 0.4]}},
                             norms={"median": 0.6}, norms_per_image=[0.2, 0.6, None])},
        "at": {"clean": rec("clean", 0.7), "pgd20_linf_8": rec("pgd20_linf_8", 0.35)},
    }
    records["rat"]["pgd20_l2_0.5"] = rec("pgd20_l2_0.5", 0.55)
    cert = {"kind": "certify", "n": 20, "params": {"n": 1000, "n0": 100, "alpha": 0.001},
            "noise": {"layer": 1, "sigma_min": 1.0}, "lipschitz": {"value": 30.0},
            "certified_accuracy": {"0.25": 0.0, "0": 0.75, "0.05": 0.3}, "images": []}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(report.build_results(records, {"rat": cert})))
    zr = logic.load_zoo_results(path)
    (row,) = zr.certified
    assert row["model"] == "rat" and row["L"] == 30.0 and row["sigma"] == 1.0
    assert [k for k in row if k.startswith("certified @")] == ["certified @0", "certified @0.05", "certified @0.25"]
    assert row["certified @0.05"] == 0.3 and row["PGD-20 L2 0.5"] == 0.55
    table = {(r["model"], r["metric"]): r for r in zr.table}
    assert table[("rat", "PGD-20 Linf 8/255")]["value"] == 0.4
    assert table[("at", "clean accuracy")]["value"] == 0.8  # the clean record's clean accuracy
    assert [r["metric"] for r in zr.norms_table] == ["C&W-L2 median minimal norm"]
    assert {(r["model"], r["eps (/255)"], r["accuracy"]) for r in zr.eps_sweep if r["attack"] == "pgd20"} >= {
        ("rat", 2.0, 0.7), ("rat", 8.0, 0.4)}
    assert ("rat", 5.0, 0.45) in {(r["model"], r["EOT samples"], r["accuracy"]) for r in zr.eot_sweep}
    assert sorted(r["L2"] for r in zr.cw_norms) == [0.2, 0.6] and zr.cw_not_found == {"rat": 1}
    for c in (charts.zoo_table_chart(zr.table), charts.sweep_chart(zr.eps_sweep, "eps (/255)"),
              charts.sweep_chart(zr.eot_sweep, "EOT samples", log_x=True), charts.norms_chart(zr.cw_norms)):
        c.to_dict()
    assert logic.load_zoo_results(tmp_path / "absent.json") is None
    path.write_text("[1, 2]")
    with pytest.raises(logic.InputError, match="no 'models' section"):
        logic.load_zoo_results(path)


def test_configure_threads_reads_the_environment(monkeypatch) -> None:
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(logic.THREADS_ENV, "2")
        assert logic.configure_threads() == 2 and torch.get_num_threads() == 2
        monkeypatch.setenv(logic.THREADS_ENV, "many")
        assert logic.configure_threads() == 1 and torch.get_num_threads() == 1
        monkeypatch.delenv(logic.THREADS_ENV)
        assert logic.configure_threads() == 1
    finally:
        torch.set_num_threads(before)
