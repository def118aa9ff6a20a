"""The demo's logic (app/logic.py, app/images.py, app/results.py): it builds on ratzoo's public
API only, gives ratzoo's own verdict, queues visitors, prepares uploads, and keeps units apart."""

from __future__ import annotations

import ast
import io
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ratzoo
from app import images, logic, results

APP = Path(__file__).resolve().parent.parent / "app"
ALLOWED_ROOTS = {"streamlit", "altair", "PIL", "numpy", "torch", "ratzoo", "app"}


# --------------------------------------------------------------------------- the public API only


def outside_public_api(source: str, filename: str = "<src>") -> list[str]:
    """Every import (and ``ratzoo.<name>`` use) in ``source`` that is neither the standard library,
    the allowed third-party packages, the app's own modules, nor a name in ``ratzoo.__all__``."""
    bad = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            for a in node.names:
                root = a.name.split(".")[0]
                if a.name.startswith("ratzoo.") or (root not in ALLOWED_ROOTS and root not in sys.stdlib_module_names):
                    bad.append(f"import {a.name}")
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:  # from .logic import ...: the app's own modules
                continue
            root = mod.split(".")[0]
            if mod == "ratzoo":
                bad += [f"from ratzoo import {a.name}" for a in node.names if a.name not in ratzoo.__all__]
            elif mod.startswith("ratzoo.") or (root not in ALLOWED_ROOTS and root not in sys.stdlib_module_names):
                bad.append(f"from {mod} import ...")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "ratzoo":
            if node.attr not in ratzoo.__all__:
                bad.append(f"ratzoo.{node.attr}")
    return bad


def test_the_app_imports_only_ratzoos_public_api() -> None:
    files = sorted(APP.glob("*.py"))
    assert len(files) >= 5
    bad = {f.name: outside_public_api(f.read_text(), str(f)) for f in files}
    assert not any(bad.values()), bad


@pytest.mark.parametrize("source", [
    "from ratzoo.judge import derive_seed", "from ratzoo import zoo", "import ratzoo.evaluation",
    "import pandas", "import ratzoo\nratzoo.judge.decide", "from train import report",
])
def test_the_import_check_catches_private_names(source: str) -> None:
    assert outside_public_api(source)


def test_logic_stays_small_and_has_no_decision_rule_of_its_own() -> None:
    text = (APP / "logic.py").read_text()
    assert len(text.splitlines()) < 400
    for f in APP.glob("*.py"):
        code = f.read_text()
        assert restated_defaults(code) == [], f.name
        # a verdict of its own would need these: seeds per stream, an argmax, label comparisons
        for token in ("derive_seed", "STREAM_", "argmax", "decision_samples=", ".label ==", "!= label"):
            assert token not in code, f"{f.name} contains {token!r}"


def restated_defaults(code: str) -> list[str]:
    """Calls ``ratzoo.f(..., k=number)`` where the number is ``f``'s own default for ``k``: a copy
    of a library default (a draw count, a level), which drifts when the library's changes."""
    import ast
    import inspect

    found = []
    for node in ast.walk(ast.parse(code)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "ratzoo"):
            continue
        params = inspect.signature(getattr(ratzoo, node.func.attr)).parameters
        for kw in node.keywords:
            value = kw.value.value if isinstance(kw.value, ast.Constant) else None
            if (type(value) in (int, float) and kw.arg in params and params[kw.arg].default == value):
                found.append(f"ratzoo.{node.func.attr}({kw.arg}={kw.value.value!r})")
    return found


def test_the_default_check_sees_a_copy() -> None:
    assert restated_defaults("ratzoo.predict_proba(m, x, samples=100)") == ["ratzoo.predict_proba(samples=100)"]
    assert restated_defaults("ratzoo.certify(m, x, n0=100, n=1000, alpha=0.001)") == [
        "ratzoo.certify(n0=100)", "ratzoo.certify(alpha=0.001)"]
    assert restated_defaults("ratzoo.predict_proba(m, x, samples=SAMPLES)") == []


# --------------------------------------------------------------------------- ratzoo's verdict, not a copy


@pytest.fixture(scope="module")
def noisy() -> logic.LoadedModel:
    torch.manual_seed(0)
    model = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.3).eval()
    return logic.LoadedModel("tiny", model, ratzoo.is_randomized(model))


def tiny_image(seed: int, label: int) -> logic.PreparedImage:
    px = np.random.default_rng(seed).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    return logic.PreparedImage(px, label, f"random #{seed}")


@pytest.mark.parametrize("attack, eps", [("pgd-linf", 8), ("pgd-l2", 0.5), ("fgsm", 4), ("cw-l2", None)])
def test_the_app_and_evaluate_give_the_same_verdict_and_norms(noisy, attack, eps) -> None:
    """The app's attack path is ratzoo.run_attack, which evaluate also calls: same seed, same
    image, same verdict, same norms, bit for bit."""
    for i in range(3):
        img = tiny_image(i, i % 10)
        spec = logic.validate_spec(attack, eps, 3, 2, 7 + i)
        mine = logic.attack_image(noisy, img, spec)
        kw = dict(eps=spec.eps, steps=3, eot_samples=2) if attack != "fgsm" else dict(eps=spec.eps, eot_samples=2)
        if attack == "cw-l2":
            kw = dict(steps=3, eot_samples=2, search_steps=5)
        rec = ratzoo.evaluate(noisy.model, img.tensor(), torch.tensor([img.label]), attack=attack, seed=7 + i, **kw)
        pi = ratzoo.Record.from_json(rec).per_image
        assert bool(mine.outcome.robust[0]) == bool(pi["robust"][0])
        assert bool(mine.outcome.clean.correct[0]) == bool(pi["clean_correct"][0])
        assert float(mine.outcome.linf[0]) == pytest.approx(pi["linf"][0], abs=1e-6)
        assert float(mine.outcome.l2[0]) == pytest.approx(pi["l2"][0], abs=1e-5)


def test_the_app_shows_whatever_run_attack_decides(noisy, monkeypatch) -> None:
    """The verdict is read off ratzoo.run_attack's outcome: flip the outcome, the words flip."""
    calls = []
    real = ratzoo.run_attack

    def flipped(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(kwargs)
        out.adv.correct = ~out.adv.correct
        return out

    spec = logic.validate_spec("pgd-linf", 8, 2, 2, 0)
    img = tiny_image(1, 3)
    before = logic.attack_image(noisy, img, spec)
    monkeypatch.setattr(ratzoo, "run_attack", flipped)
    after = logic.attack_image(noisy, img, spec)
    assert len(calls) == 1 and calls[0]["seed"] == 0 and calls[0]["eot_samples"] == 2
    if before.verdict != "wrong before the attack":
        assert {before.verdict, after.verdict} == {"fooled", "held"}


def test_norms_and_budget_come_from_the_outcome(noisy) -> None:
    spec = logic.validate_spec("pgd-linf", 8, 3, 2, 0)
    r = logic.attack_image(noisy, tiny_image(2, 5), spec)
    shown = logic.norms_text(r)
    assert shown["largest pixel change (Linf)"] == f"{float(r.outcome.linf[0]) * 255:.2f}/255"
    assert shown["total change (L2)"] == f"{float(r.outcome.l2[0]):.3f}"
    assert shown["budget"].startswith("within") and float(r.outcome.linf[0]) <= 8 / 255 + 1e-6
    cw = logic.attack_image(noisy, tiny_image(2, 5), logic.validate_spec("cw-l2", None, 2, 2, 0))
    assert logic.norms_text(cw)["budget"].startswith("no budget")


def test_an_upload_is_attacked_away_from_the_models_own_answer(noisy) -> None:
    img = logic.PreparedImage(tiny_image(3, 0).pixels, None, "your upload x.png")
    r = logic.attack_image(noisy, img, logic.validate_spec("fgsm", 8, 1, 2, 0))
    assert not r.label_is_true and "its own first answer" in r.sentence() or r.verdict == "held"
    assert "the its" not in r.sentence() and "not the true" not in r.sentence(), r.sentence()
    assert r.label == int(ratzoo.predict_proba(noisy.model, img.tensor(), seed=0).label[0])


def test_a_certificate_comes_from_ratzoo_certify(noisy) -> None:
    r = logic.attack_image(noisy, tiny_image(4, 1), logic.validate_spec("fgsm", 8, 1, 2, 0), certify=True)
    (ref,) = ratzoo.certify(noisy.model, r.x, n0=100, n=1000, alpha=0.001, seed=0)
    assert (r.certificate.label, r.certificate.radius) == (ref.label, ref.radius)


def test_certify_caches_the_first_layers_bound_until_the_weights_change() -> None:
    import ratzoo.lipschitz as lipschitz

    torch.manual_seed(0)
    model = ratzoo.build_model(width=2, noise_kind="fixed", noise_sigma=0.3).eval()
    calls = []
    real = lipschitz.feature_lipschitz

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    lipschitz.feature_lipschitz = counting
    try:
        x = torch.rand(1, 3, 32, 32)
        a = ratzoo.certify(model, x, n=200, seed=0)[0]
        b = ratzoo.certify(model, x, n=200, seed=0)[0]
        assert len(calls) == 1 and a.lipschitz == b.lipschitz
        with torch.no_grad():
            model.stem.conv.weight.mul_(2.0)
        c = ratzoo.certify(model, x, n=200, seed=0)[0]
        assert len(calls) == 2 and c.lipschitz > a.lipschitz * 1.5
    finally:
        lipschitz.feature_lipschitz = real


# --------------------------------------------------------------------------- settings, words


@pytest.mark.parametrize("attack, eps, steps, eot, seed, match", [
    ("nope", 8, 20, 1, 0, "unknown attack"), ("pgd-linf", 0, 20, 1, 0, "out of range"),
    ("pgd-linf", 40, 20, 1, 0, "at most 32/255"), ("pgd-linf", "x", 20, 1, 0, "must be a number"),
    ("pgd-l2", 0.5, 0, 1, 0, "steps"), ("pgd-linf", 8, 2.5, 1, 0, "whole number"),
    ("pgd-linf", 8, 20, 65, 0, "noise draws"), ("pgd-linf", 8, 20, 1, -1, "seed"),
])
def test_bad_settings_say_what_to_change(attack, eps, steps, eot, seed, match) -> None:
    with pytest.raises(logic.InputError, match=match):
        logic.validate_spec(attack, eps, steps, eot, seed)


def test_units_of_the_settings() -> None:
    s = logic.validate_spec("pgd-linf", 8, 20, 10, 0)
    assert s.eps == pytest.approx(8 / 255) and "budget 8/255" in s.describe() and "EOT 10" in s.describe()
    assert logic.validate_spec("pgd-l2", 0.5, 20, 10, 0).eps == 0.5
    assert logic.validate_spec("cw-l2", "ignored", 20, 10, 0).eps is None
    assert logic.validate_spec("fgsm", 8, 99, 1, 0).steps == 1
    assert set(logic.ATTACKS) <= set(ratzoo.attacks.ATTACKS)


def test_lerat_is_described_by_the_std_it_learned() -> None:
    models = {m["name"]: m for m in ratzoo.list_models()}
    words = logic.model_words(models["lerat"])
    noise = models["lerat"]["noise"]
    assert 0 < noise["learned_sigma_min"] < noise["learned_sigma_mean"] < noise["noise_sigma"]
    assert f"mean {noise['learned_sigma_mean']:.2f}" in words and f"min {noise['learned_sigma_min']:.2f}" in words
    assert "noise with std" not in words
    assert logic.model_words(models["rat"]).endswith("noise with std 1 after the first layer")
    assert "no noise" in logic.model_words(models["standard"])


# --------------------------------------------------------------------------- the queue


def test_the_queue_runs_one_attack_per_worker_and_tells_waiters_their_place() -> None:
    pool = logic.WorkerPool(1)
    seen: dict[int, list[int]] = {}
    active, peak = [0], [0]
    lock = threading.Lock()

    def visitor(i: int) -> None:
        with pool.slot(lambda pos, busy: seen.setdefault(i, []).append(pos)):
            with lock:
                active[0] += 1
                peak[0] = max(peak[0], active[0])
            time.sleep(0.6)
            with lock:
                active[0] -= 1

    threads = [threading.Thread(target=visitor, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
        time.sleep(0.1)  # arrive in order
    for t in threads:
        t.join()
    assert peak[0] == 1
    assert 0 not in seen and seen[1][0] == 1 and seen[2][0] == 2 and seen[2][-1] == 1


def test_a_visitor_who_leaves_the_queue_frees_their_place() -> None:
    pool = logic.WorkerPool(1)
    hold = threading.Event()

    def holder() -> None:
        with pool.slot():
            hold.wait(5)

    t = threading.Thread(target=holder)
    t.start()
    time.sleep(0.1)

    class Left(BaseException):
        pass

    def leave(pos: int, busy: int) -> None:
        raise Left

    with pytest.raises(Left):
        with pool.slot(leave):
            pass
    assert pool._queue == []
    hold.set()
    t.join()
    with pool.slot() as slot:  # free again
        assert slot == 0


# --------------------------------------------------------------------------- results: units and records


def test_norms_never_land_on_a_percentage_axis() -> None:
    models = ratzoo.list_models()
    acc, dist = results.accuracy_rows(models), results.distance_rows(models)
    assert acc and dist
    assert all(0 <= r["accuracy (%)"] <= 100 for r in acc)
    assert not {r["setting"] for r in acc} & {r["setting"] for r in dist}
    for row in results.zoo_table(models):
        for k, v in row.items():
            if k.endswith("(%)"):
                assert "norm" not in k and "L2 distance" not in k and 0 <= v <= 100
    rat = next(r for r in results.zoo_table(models) if r["model"] == "RAT")
    median = next(m["value"] for m in models if m["name"] == "rat" for m in m["metrics"] if m["type"] == "median_l2_norm")
    assert rat["C&W median smallest change (L2)"] == round(median, 3) and median < 5


def test_every_committed_record_loads_as_a_typed_record() -> None:
    recs, bad = results.load_records()
    assert bad == 0 and len(recs) == len(list((logic.RESULTS / "records").glob("*.json")))
    labels = results.model_labels(ratzoo.list_models())
    sweeps = results.sweep_rows(recs, labels)
    assert {r["budget (/255)"] for r in sweeps["fig3"]} >= {2.0, 4.0, 8.0, 16.0, 32.0}
    assert {r["noise draws per step"] for r in sweeps["fig4"]} >= {1, 5, 10, 20}
    named, _ = results.load_named_records()
    rows = results.record_rows(named, labels)
    assert all("/" not in str(v) or k == "budget (/255)" for r in rows for k, v in r.items())
    # every row tells its record apart (a deterministic model's EOT copies looked alike) and no cell is None
    assert len({(r["model"], r["record"]) for r in rows}) == len(rows) == len(recs)
    assert all(v is not None and v != "None" for r in rows for v in r.values())


# --------------------------------------------------------------------------- gallery and uploads


def test_gallery_has_four_images_per_class_and_the_default_is_a_cat() -> None:
    imgs, recs = images.load_gallery()
    assert imgs.shape == (40, 32, 32, 3) and imgs.dtype == np.uint8
    assert [sum(r["label"] == c for r in recs) for c in range(10)] == [4] * 10
    assert recs[logic.DEFAULT_IMAGE]["class"] == "cat"
    with pytest.raises(images.InputError, match="does not exist"):
        images.gallery_image(40)


def test_gallery_pixels_are_the_test_set_pixels(cifar_root) -> None:
    xs, ys = ratzoo.load_cifar10("test", root=cifar_root)
    tiles, recs = images.load_gallery()
    for tile, r in zip(tiles, recs):
        assert ys[r["index"]] == r["label"] and np.array_equal(tile, xs[r["index"]])


def test_cifar_image_by_index_checks_the_range() -> None:
    imgs, labels = np.zeros((5, 32, 32, 3), np.uint8), np.array([0, 1, 2, 3, 4])
    assert images.cifar_image(3, imgs, labels).label == 3
    for bad in (-1, 5, True, 2.0):
        with pytest.raises(images.InputError, match="between 0 and 4"):
            images.cifar_image(bad, imgs, labels)


def test_perturbation_image_and_enlarge() -> None:
    x = torch.full((1, 3, 32, 32), 0.5)
    adv = x.clone()
    adv[0, 0, 0, 0] += 0.1
    adv[0, 1, 0, 0] -= 0.05
    img, amp = images.perturbation_image(x, adv)
    assert amp == pytest.approx(5.0) and img[0, 0, 0] == 255 and img[0, 0, 1] == 64 and img[5, 5, 0] == 128
    big = images.enlarge(img[:2, :2])
    assert big.shape == (16, 16, 3) and (big[:8, :8] == img[0, 0]).all()


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
    img = images.preprocess_upload(encode(Image.fromarray(a)), "wide.png")
    assert img.pixels.shape == (32, 32, 3) and img.pixels.dtype == np.uint8
    assert img.label is None
    assert "600x300 RGB" in img.note and "center-cropped to 300x300" in img.note and "32x32" in img.note
    # the central 300x300 square is 1/6 red, 2/3 green, 1/6 blue
    assert img.pixels[16, 16, 1] > 200 and img.pixels[16, 0, 0] > 150 and img.pixels[16, 31, 2] > 150


def test_upload_stretch_and_pad_keep_what_they_say() -> None:
    a = np.full((10, 40, 3), 255, np.uint8)  # white, 4:1
    pad = images.preprocess_upload(encode(Image.fromarray(a)), "w.png", fit="pad")
    assert "padded with gray to 40x40" in pad.note
    assert abs(int(pad.pixels[0, 16, 0]) - 128) <= 2 and pad.pixels[16, 16].min() > 240  # gray border, white middle
    st = images.preprocess_upload(encode(Image.fromarray(a)), "w.png", fit="stretch")
    assert "stretched" in st.note and st.pixels.min() > 240  # all white: nothing added


def test_upload_rgba_is_composited_on_white() -> None:
    a = np.zeros((64, 64, 4), np.uint8)
    a[..., 0] = 255  # red ...
    a[:, :32, 3] = 0  # ... transparent on the left half
    a[:, 32:, 3] = 255
    img = images.preprocess_upload(encode(Image.fromarray(a, "RGBA")), "t.png")
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
    img = images.preprocess_upload(encode(im), f"{mode}.png")
    assert img.pixels.shape == (32, 32, 3)
    if mode != "P":
        assert np.array_equal(img.pixels[..., 0], img.pixels[..., 1]) and np.array_equal(img.pixels[..., 1], img.pixels[..., 2])
        assert img.pixels.max() > 100  # 16-bit data scaled to 8 bits, not saturated or zeroed
    assert "32x32" in img.note


def test_upload_tiny_image_is_upsampled_and_gif_uses_first_frame() -> None:
    tiny = images.preprocess_upload(encode(Image.new("RGB", (4, 4), (10, 200, 30))), "tiny.png")
    assert "upsampled to 32x32" in tiny.note and tuple(tiny.pixels[5, 5]) == (10, 200, 30)
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    gif = images.preprocess_upload(buf.getvalue(), "anim.gif")
    assert "first of 2 frames" in gif.note and gif.pixels[..., 0].mean() > 200


def test_upload_jpeg_with_exif_rotation_is_turned_upright() -> None:
    im = Image.new("RGB", (60, 30), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 30, 30))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img = images.preprocess_upload(encode(im, "JPEG", exif=exif, quality=95), "photo.jpg")
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
    with pytest.raises(images.InputError, match=message):
        images.preprocess_upload(data, "bad.png")


def test_huge_uploads_are_refused_before_decoding() -> None:
    with pytest.raises(images.InputError, match="MB"):
        images.preprocess_upload(b"\0" * (images.MAX_UPLOAD_BYTES + 1), "big.bin")
    # a small file that decodes to 64 megapixels
    bomb = encode(Image.new("1", (8000, 8000)))
    assert len(bomb) < images.MAX_UPLOAD_BYTES
    with pytest.raises(images.InputError, match="pixels"):
        images.preprocess_upload(bomb, "bomb.png")


def test_unknown_fit_mode_is_an_input_error() -> None:
    with pytest.raises(images.InputError, match="resize mode"):
        images.preprocess_upload(encode(Image.new("RGB", (8, 8))), "x.png", fit="zoom")




def test_the_app_runs_the_default_cpu_pass_size(noisy, monkeypatch) -> None:
    """No entry point may restate chunk_size: the app's attack must reach the base class's
    default (the pass-size sweep's value), which is looked up per run."""
    import ratzoo.attacks.base as base

    seen = []
    real = base.default_chunk

    def spy(device, accelerator=base.DEFAULT_ATTACK_CHUNK):
        seen.append(real(device, accelerator))
        return seen[-1]

    monkeypatch.setattr(base, "default_chunk", spy)
    spec = logic.validate_spec("pgd-linf", 8, 2, 2, 0)
    img = tiny_image(0, 0)
    img = logic.PreparedImage(img.pixels, None, img.source)  # no label: attacked away from its own answer
    out = logic.attack_image(noisy, img, spec).outcome
    assert out.clean.correct.all(), "the image must be attacked for the test to mean anything"
    assert seen and all(v == ratzoo.eot.CPU_CHUNK for v in seen)


def test_sweep_chart_gives_the_plot_its_height_and_tells_attacks_apart() -> None:
    """Streamlit keeps a single chart at its total height (legends on top squashed the plot); dashes
    per attack had a legend of marker shapes that did not fit a phone. Each attack is a panel named
    above it; one model keeps one colour from the colour-blind-safe palette."""
    from app import charts

    rows = [{"budget (/255)": b, "accuracy (%)": 50.0, "model": m, "attack": a, "n": 10}
            for b in (2, 32) for a in ("FGSM", "PGD (Linf)") for m in ("Standard", "AT")]
    spec = charts.sweep_chart(rows, "budget (/255)", ["Standard", "AT"], log_x=True).to_dict()
    assert spec["facet"]["row"]["field"] == "attack" and spec["facet"]["row"]["header"]["labelOrient"] == "top"
    enc = spec["spec"]["encoding"]
    assert "strokeDash" not in enc and "shape" not in enc and spec["spec"]["height"] >= 120
    colors = enc["color"]["scale"]["range"]
    assert len(set(colors)) == 2 and colors == list(charts.MODEL_PALETTE[:2])
    assert enc["x"]["scale"]["domain"] == [2, 32]  # the measured span, not a rounded 1-100
    probs = charts.probability_chart([{"class": c, "image": "before", "probability": 0.1} for c in ratzoo.CIFAR10_CLASSES],
                                     list(ratzoo.CIFAR10_CLASSES)).to_dict()["encoding"]
    assert probs["y"]["axis"]["labelOverlap"] is False  # every class name drawn, none hidden as "overlapping"
