"""EOT prediction: probabilities, batched == looped, one batched pass, deterministic models."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

import ratzoo
from ratzoo import EOTPrediction, build_model, noise_control, predict_proba
from ratzoo.randomness import randomness_of
from ratzoo.eot import DEFAULT_DECISION_SAMPLES, forward_draws


@pytest.fixture(scope="module")
def noisy_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(width=2, noise_kind="fixed", noise_sigma=1.0).eval()


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    return torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(1))


class ForwardCounter:
    """Counts forward calls of a module and the images they carried."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.calls: list[int] = []
        self.handle = module.register_forward_hook(lambda m, inp, out: self.calls.append(inp[0].shape[0]))

    def __enter__(self) -> ForwardCounter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.remove()


def test_probs_sum_to_one_and_fields_are_consistent(noisy_model, images) -> None:
    k = 12
    p = predict_proba(noisy_model, images, samples=k, seed=0)
    assert isinstance(p, EOTPrediction)
    assert p.probs.shape == p.probs_std.shape == p.votes.shape == (5, 10)
    torch.testing.assert_close(p.probs.sum(1), torch.ones(5))
    assert (p.probs >= 0).all() and (p.probs_std >= 0).all()
    assert p.votes.dtype == torch.int64 and (p.votes.sum(1) == k).all()
    assert p.samples == k
    assert torch.equal(p.label, p.probs.argmax(1)) and torch.equal(p.majority, p.votes.argmax(1))
    assert p.probs_std.max() > 0, "sigma=1 noise must make the softmax vary across draws"


@pytest.mark.parametrize("layer", [0, 1])
@pytest.mark.parametrize("chunk_size", [4096, 10, 3])
def test_batched_equals_looped_for_the_same_generator(images, layer: int, chunk_size: int) -> None:
    torch.manual_seed(0)
    model = build_model(width=2, noise_kind="learned", noise_sigma=0.8, noise_layer=layer).eval()
    k = 7
    g = torch.Generator().manual_seed(42)
    with torch.no_grad(), noise_control(model, generator=g):
        looped = torch.stack([model(images).softmax(-1) for _ in range(k)])  # (K, N, C)
    p = predict_proba(model, images, samples=k, generator=torch.Generator().manual_seed(42),
                      chunk_size=chunk_size)
    torch.testing.assert_close(p.probs, looped.mean(0), rtol=0, atol=1e-6)
    torch.testing.assert_close(p.probs_std, looped.std(0, unbiased=False), rtol=0, atol=1e-6)
    votes = torch.nn.functional.one_hot(looped.argmax(-1), 10).sum(0)
    assert torch.equal(p.votes, votes)


def test_seed_makes_prediction_reproducible(noisy_model, images) -> None:
    a = predict_proba(noisy_model, images, samples=8, seed=5)
    b = predict_proba(noisy_model, images, samples=8, seed=5)
    c = predict_proba(noisy_model, images, samples=8, seed=6)
    assert torch.equal(a.probs, b.probs) and torch.equal(a.votes, b.votes)
    assert not torch.equal(a.probs, c.probs)
    # predict_proba must leave the model's own noise switch and generator alone
    assert noisy_model.noise.enabled and noisy_model.noise.generator is None


def test_k_draws_cost_one_batched_pass(noisy_model, images) -> None:
    k = 20
    with ForwardCounter(noisy_model) as count:
        predict_proba(noisy_model, images, samples=k, seed=0, chunk_size=k * len(images))
    assert count.calls == [k * len(images)]


def test_cpu_default_passes_are_cpu_chunk_images(noisy_model, images) -> None:
    from ratzoo.eot import CPU_CHUNK

    k = 20
    with ForwardCounter(noisy_model) as count:
        predict_proba(noisy_model, images, samples=k, seed=0)
    n = len(images)  # whole draws per pass: as many as fit in CPU_CHUNK images
    assert sum(count.calls) == k * n and max(count.calls) == min(k, max(1, CPU_CHUNK // n)) * n


def test_chunks_bound_the_images_per_pass(noisy_model, images) -> None:
    k = 6
    with ForwardCounter(noisy_model) as count:
        p = predict_proba(noisy_model, images, samples=k, seed=0, chunk_size=12)
    assert sum(count.calls) == k * len(images)
    assert max(count.calls) <= 12
    full = predict_proba(noisy_model, images, samples=k, seed=0)
    torch.testing.assert_close(p.probs, full.probs, rtol=0, atol=1e-6)


def test_chunk_smaller_than_the_batch_still_bounds_memory(noisy_model, images) -> None:
    with ForwardCounter(noisy_model) as count:
        predict_proba(noisy_model, images, samples=3, seed=0, chunk_size=2)
    assert max(count.calls) <= 2, f"a pass carried {max(count.calls)} images, chunk_size is 2"
    assert sum(count.calls) == 3 * len(images)


def test_deterministic_model_runs_once_whatever_k(images) -> None:
    torch.manual_seed(0)
    model = build_model(width=2).eval()
    randomness_of(model, images)  # the probe runs once per model and shape (tests/test_randomness.py counts it)
    with ForwardCounter(model) as count:
        p100 = predict_proba(model, images, samples=100)
    assert count.calls == [len(images)]
    p1 = predict_proba(model, images, samples=1)
    assert torch.equal(p100.probs, p1.probs)
    assert torch.equal(p100.probs, model(images).softmax(-1).detach())
    assert (p100.probs_std == 0).all()
    assert (p100.votes.sum(1) == 100).all() and torch.equal(p100.majority, p1.label)


def test_noise_switched_off_counts_as_deterministic(noisy_model, images) -> None:
    randomness_of(noisy_model, images)
    with noise_control(noisy_model, enabled=False), ForwardCounter(noisy_model) as count:
        a = predict_proba(noisy_model, images, samples=50)
        b = predict_proba(noisy_model, images, samples=1)
    assert count.calls == [len(images), len(images)]
    assert torch.equal(a.probs, b.probs)


def test_forward_draws_keeps_gradients(noisy_model, images) -> None:
    x = images.clone().requires_grad_(True)
    with noise_control(noisy_model, seed=0):
        logits = forward_draws(noisy_model, x, 4)
    assert logits.shape == (4, 5, 10)
    logits.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_bad_samples(noisy_model, images, bad) -> None:
    with pytest.raises(ValueError, match="samples must be a positive integer"):
        predict_proba(noisy_model, images, samples=bad)


BAD_IMAGES = {  # what a user passes by mistake -> what the error must tell them
    "one image": (lambda: torch.rand(3, 32, 32), r"add the batch dimension with x.unsqueeze\(0\)"),
    "uint8": (lambda: torch.zeros(2, 3, 32, 32, dtype=torch.uint8), r"dtype torch.uint8: for 8-bit pixels pass x.float\(\) / 255"),
    "channels-last": (lambda: torch.rand(2, 32, 32, 3), r"looks channels-last .*pass x.permute\(0, 3, 1, 2\)"),
    "0-255": (lambda: torch.rand(2, 3, 32, 32) * 255, r"must lie in \[0, 1\] .*range \[.*: for 0-255 pixels pass x / 255"),
    "numpy": (lambda: np.random.rand(2, 3, 32, 32), r"must be a torch.Tensor .*got a ndarray"),
}
ENTRY_POINTS = {  # every public function that takes images
    "predict_proba": lambda m, x: predict_proba(m, x, samples=2),
    "run_attack": lambda m, x: ratzoo.run_attack(m, x, torch.zeros(len(x), dtype=torch.long), "fgsm", eps=8 / 255),
    "certify": lambda m, x: ratzoo.certify(m, x, n0=2, n=4),
    "benchmark": lambda m, x: ratzoo.benchmark(m, x, torch.zeros(len(x), dtype=torch.long)),
}


@pytest.mark.parametrize("entry", ENTRY_POINTS)
@pytest.mark.parametrize("bad", BAD_IMAGES)
def test_every_entry_point_refuses_bad_images_in_words(noisy_model, entry, bad) -> None:
    make, message = BAD_IMAGES[bad]
    with pytest.raises(ValueError, match=message):
        ENTRY_POINTS[entry](noisy_model, make())


@pytest.mark.parametrize("noise", [True, False])
@pytest.mark.parametrize("labels, message", [
    (torch.zeros(2), r"integer class indices, got dtype torch.float32: pass labels.long\(\)"),
    (torch.zeros(2, 1, dtype=torch.long), r"shape \(2,\), one per image, got \(2, 1\)"),
    (torch.tensor([0, -1]), r"class indices >= 0, got -1"),
    (torch.tensor([0, 10]), r"class indices in \[0, 9\] for this model's 10 outputs, got 10"),
    ([0, 1], r"must be a torch.Tensor of 2 class indices, got a list"),
])
def test_bad_labels_are_refused_in_words_before_any_attack(noisy_model, noise, labels, message) -> None:
    """Labels past the model's classes would count every image as misclassified, silently."""
    x = torch.rand(2, 3, 32, 32)
    with noise_control(noisy_model, enabled=noise), pytest.raises(ValueError, match=message):
        ratzoo.run_attack(noisy_model, x, labels, "fgsm", eps=8 / 255, eot_samples=2, decision_samples=2)


@pytest.mark.parametrize("noise", [True, False])
def test_decisions_build_no_autograd_graph(noisy_model, noise) -> None:
    """The decision rule's draws are verdicts, not attack steps: no graph is kept (memory, time)."""
    with noise_control(noisy_model, enabled=noise):
        out = ratzoo.run_attack(noisy_model, torch.rand(2, 3, 32, 32), torch.tensor([0, 1]), "fgsm", eps=8 / 255,
                                eot_samples=2, decision_samples=4)
    assert not out.clean.probs.requires_grad and not out.adv.probs.requires_grad


def test_an_eot_prediction_draws_by_default_what_the_decision_rule_draws() -> None:
    """A user's ``predict_proba(model, x)`` predicts what ratzoo judges with: one constant,
    eot's, is both defaults, and judge and ``ratzoo`` expose that same constant."""
    from ratzoo import judge

    assert inspect.signature(predict_proba).parameters["samples"].default == DEFAULT_DECISION_SAMPLES
    assert inspect.signature(judge.decide).parameters["samples"].default == DEFAULT_DECISION_SAMPLES
    assert judge.DEFAULT_DECISION_SAMPLES == ratzoo.DEFAULT_DECISION_SAMPLES == DEFAULT_DECISION_SAMPLES
