"""The training loop: data on the device, batched augmentation, adversarial examples,
resumable state, DDP, final evaluation and export."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

import ratzoo
from ratzoo.models import ModelConfig, build_model
from ratzoo.noise import WeightNoise, noise_control, noise_modules

from .config import TrainConfig, default_state_dir
from .state import load_state, save_state

# --------------------------------------------------------------------------- distributed


@dataclasses.dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup_distributed(device: torch.device) -> Dist:
    """Join the process group that ``torchrun`` describes in the environment, if any."""
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return Dist()
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def resolve_device(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        return torch.device("cpu")
    dev = torch.device(cfg.device)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return dev


# --------------------------------------------------------------------------- data


def seeded(seed: int, *tags: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator whose seed depends only on (seed, tags): resumable at any epoch."""
    s = seed
    for t in tags:
        s = (s * 1_000_003 + t + 1) % (2**62)
    return torch.Generator(device=device).manual_seed(s)


def channels_last_is_safe(model: nn.Module, device: torch.device) -> bool:
    """Whether channels-last inputs may reach ``model`` on ``device``.

    torch 2.13.0's oneDNN convolution backward corrupts the CPU heap (glibc aborts with
    "double free or corruption") when a network narrower than 8 channels sees channels-last
    inputs; the width-2 runs of ``tests/test_train.py`` died so on an AVX2 AMD EPYC.
    """
    if device.type != "cpu":
        return True
    return min(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)) >= 8


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random crop (4-pixel zero padding) + horizontal flip, batched on the device.

    ``x`` is ``(B, 3, 32, 32)`` uint8; returns the same shape and dtype, laid out
    channels-last in memory (a view of the gathered NHWC crops), kept because a copy to
    contiguous made the training step slower (benchmarks/bench_train.py --contiguous).
    """
    b, dev = x.shape[0], x.device
    pad = F.pad(x, (4, 4, 4, 4))
    oy = torch.randint(0, 9, (b,), generator=gen, device=dev)
    ox = torch.randint(0, 9, (b,), generator=gen, device=dev)
    flip = torch.rand(b, generator=gen, device=dev) < 0.5
    ar = torch.arange(32, device=dev)
    iy = oy[:, None] + ar
    ix = ox[:, None] + ar
    ix = torch.where(flip[:, None], ix.flip(1), ix)
    out = pad[torch.arange(b, device=dev)[:, None, None], :, iy[:, :, None], ix[:, None, :]]  # (B,32,32,3)
    return out.permute(0, 3, 1, 2)


def load_data(cfg: TrainConfig, device: torch.device) -> dict[str, torch.Tensor]:
    root = cfg.data_dir or None
    xtr, ytr = ratzoo.load_cifar10("train", root=root)
    xtr = torch.from_numpy(xtr.copy()).permute(0, 3, 1, 2).contiguous()
    ytr = torch.from_numpy(ytr.copy())
    nval = min(cfg.val_size, len(xtr) // 10)
    data = {"val_x": xtr[len(xtr) - nval:], "val_y": ytr[len(ytr) - nval:]}
    xtr, ytr = xtr[: len(xtr) - nval], ytr[: len(ytr) - nval]
    if cfg.train_subset:
        xtr, ytr = xtr[: cfg.train_subset], ytr[: cfg.train_subset]
    data.update(train_x=xtr, train_y=ytr)
    return {k: v.to(device) for k, v in data.items()}


# --------------------------------------------------------------------------- attacks


def adversarial_examples(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, gen: torch.Generator, autocast: Any
) -> torch.Tensor:
    """FGSM with random start (Wong et al. 2020) or PGD-k, Linf, against the model as it
    is (noise on: a fresh draw per forward pass, as in the paper's Algorithm 1).

    Only the input receives gradients (``torch.autograd.grad`` w.r.t. the perturbation),
    so no weight gradients are computed for the attack steps.
    """
    eps, alpha = cfg.eps, cfg.step_size
    steps = 1 if cfg.attack == "fgsm_rs" else cfg.attack_steps
    delta = (torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    delta = (x + delta).clamp_(0, 1) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        with autocast:
            loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + alpha * grad.sign()).clamp_(-eps, eps)
        delta = (x + delta).clamp_(0, 1) - x
    return (x + delta).detach()


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 500) -> float:
    correct = 0
    for i in range(0, len(x), bs):
        correct += (model(x[i : i + bs].float() / 255).argmax(1) == y[i : i + bs]).sum().item()
    return correct / max(len(x), 1)


def _pgd_accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, seed: int) -> float:
    """PGD-10 Linf accuracy (single noise draw) on a held-out batch: the CO guard."""
    guard = dataclasses.replace(cfg, attack="pgd", attack_steps=10, step_size=cfg.eps / 4)
    gen = seeded(seed, 99, device=x.device)
    xf = x.float() / 255
    xa = adversarial_examples(model, xf, y, guard, gen, nullcontext())
    with torch.no_grad():
        return (model(xa).argmax(1) == y).float().mean().item()


# --------------------------------------------------------------------------- training


# the noise's own parameters (LeRAT's std, PNI's alpha): decay would pull the noise towards 0
NO_DECAY_SUFFIXES = ("log_sigma", "weight_noise.alpha")


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.dim() <= 1 or name.endswith(NO_DECAY_SUFFIXES) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def one_cycle(total: int, warmup: float):
    up = max(1, int(round(total * warmup)))

    def f(step: int) -> float:
        if step < up:
            return step / up
        return max(0.0, (total - step) / max(1, total - up))

    return f


def _log(path: Path | None, record: dict[str, Any]) -> None:
    if path is None:
        return
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


@dataclasses.dataclass
class _Run:
    """What one training run is set up with: the device, the model and its optimizer, the data
    on the device, the schedule's sizes and where the state and log go."""

    cfg: TrainConfig
    device: torch.device
    dist: Dist
    use_cl: bool
    keep_layout: bool
    autocast: Any
    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    data: dict[str, torch.Tensor]
    n_train: int
    per_rank: int
    steps_per_epoch: int
    total: int
    state_dir: Path
    state_path: Path
    log_path: Path | None


@dataclasses.dataclass
class _Progress:
    """Where the run stands; the resumable state holds all of it."""

    epochs_done: int = 0
    step: int = 0
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    best: dict[str, Any] = dataclasses.field(default_factory=dict)
    stopped: str | None = None


def train(cfg: TrainConfig, command: str) -> dict[str, Any]:
    """Run (or resume) training; returns a summary. Writes the state every epoch."""
    run = _set_up(cfg)
    progress = _restore(run)
    net = _parallel(run)
    # over all the run's steps, from the resumed one; only rank 0 draws it
    bar = tqdm(total=run.total, initial=progress.step, desc="train", unit="step", disable=not run.dist.main,
               file=sys.stderr, dynamic_ncols=True)
    for epoch in range(progress.epochs_done, cfg.epochs):
        if progress.step >= run.total:
            break
        record = _train_epoch(run, net, progress, epoch, bar)
        if run.dist.main:
            _close_epoch(run, progress, epoch, record, bar)
        if _stopping(run, progress.stopped, bar):
            break
    bar.close()
    _dump_rank_weights(run)
    return {"model": run.model, "history": progress.history, "state_path": run.state_path, "dist": run.dist,
            "device": run.device, "stopped": progress.stopped, "command": command}


# --------------------------------------------------------------------------- set-up


def _set_up(cfg: TrainConfig) -> _Run:
    """The device, the model, its optimizer and schedule, the data and the state's paths."""
    device = resolve_device(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = setup_distributed(device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cudnn.benchmark = True
    use_cl = cfg.channels_last == "on" or (cfg.channels_last == "auto" and device.type == "cuda")
    use_amp = cfg.amp == "on" or (cfg.amp == "auto" and device.type == "cuda")
    autocast = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp else nullcontext()

    state_dir = default_state_dir(cfg)
    log_path = state_dir / "log.jsonl" if dist.main else None

    model, keep_layout, use_cl = _build_model(cfg, device, use_cl)
    opt = torch.optim.SGD(_param_groups(model, cfg.weight_decay), lr=cfg.lr, momentum=cfg.momentum, nesterov=True)

    data = load_data(cfg, device)
    n_train = len(data["train_x"])
    steps_per_epoch = n_train // cfg.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"batch size {cfg.batch_size} exceeds the {n_train} training images")
    total = steps_per_epoch * cfg.epochs
    if cfg.max_steps:
        total = min(total, cfg.max_steps)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, one_cycle(steps_per_epoch * cfg.epochs, cfg.warmup))
    return _Run(cfg=cfg, device=device, dist=dist, use_cl=use_cl, keep_layout=keep_layout, autocast=autocast,
                model=model, opt=opt, sched=sched, data=data, n_train=n_train, per_rank=cfg.batch_size // dist.world,
                steps_per_epoch=steps_per_epoch, total=total, state_dir=state_dir,
                state_path=state_dir / "state.pt", log_path=log_path)


def _build_model(cfg: TrainConfig, device: torch.device, use_cl: bool) -> tuple[nn.Module, bool, bool]:
    """The seeded model on ``device``; with whether its inputs may stay channels-last, and
    whether it runs channels-last (off for a network too narrow for it)."""
    torch.manual_seed(cfg.seed)
    mcfg = ModelConfig(
        architecture=cfg.architecture, width=cfg.width, noise_kind=cfg.noise_kind,
        noise_sigma=cfg.noise_sigma if cfg.noise_kind != "none" else 0.0, noise_layer=cfg.noise_layer,
        noise_inner=cfg.noise_inner,
    )
    model = build_model(mcfg).to(device)
    keep_layout = channels_last_is_safe(model, device)
    if use_cl and not keep_layout:
        print("channels_last: off (this network is too narrow for oneDNN's channels-last CPU kernels)",
              file=sys.stderr)
        use_cl = False
    if use_cl:
        model = model.to(memory_format=torch.channels_last)
    return model, keep_layout, use_cl


def _restore(run: _Run) -> _Progress:
    """With ``--resume``, load the state into the model, optimizer, schedule and CPU RNG and go
    on from it; without, delete an old state and log so that they do not mix with this run's."""
    cfg, state_path, progress = run.cfg, run.state_path, _Progress()
    if cfg.resume and state_path.is_file():
        st = load_state(state_path, cfg)
        run.model.load_state_dict(st["model"])
        run.opt.load_state_dict(st["optimizer"])
        run.sched.load_state_dict(st["scheduler"])
        progress = _Progress(st["epoch"], st["step"], st["history"], st.get("best", {}))
        torch.set_rng_state(st["rng_cpu"])
        if st.get("finished"):
            progress.epochs_done = cfg.epochs  # nothing left to train: go straight to export
        if run.dist.main:
            print(f"resumed {state_path} at epoch {progress.epochs_done}, step {progress.step}", file=sys.stderr)
    elif state_path.is_file() and run.dist.main and not cfg.resume:
        print(f"note: overwriting the training state in {run.state_dir} (pass --resume to continue it)",
              file=sys.stderr)
        state_path.unlink()
        if run.log_path is not None and run.log_path.exists():
            run.log_path.unlink()
    if run.dist.main:
        run.state_dir.mkdir(parents=True, exist_ok=True)
    return progress


def _parallel(run: _Run) -> nn.Module:
    """The network the training steps call: the model, or under DDP its wrapper, made after
    the resume so that it broadcasts the resumed weights."""
    if run.dist.world == 1:
        return run.model
    from torch.nn.parallel import DistributedDataParallel as DDP

    return DDP(run.model, device_ids=[run.device.index] if run.device.type == "cuda" else None)


# --------------------------------------------------------------------------- one epoch


def _train_epoch(run: _Run, net: nn.Module, progress: _Progress, epoch: int, bar: tqdm) -> dict[str, Any]:
    """One pass over the shuffled training images (up to the run's last step); returns the
    epoch's log record. Every draw comes from generators seeded by the epoch, so that a
    resumed epoch draws what an uninterrupted one would."""
    cfg, dist, device, model = run.cfg, run.dist, run.device, run.model
    model.train()
    g_data = seeded(cfg.seed, epoch, 0)
    perm = torch.randperm(run.n_train, generator=g_data).to(device)
    g_aug = seeded(cfg.seed, epoch, 1, dist.rank, device=device)
    g_noise = seeded(cfg.seed, epoch, 2, dist.rank, device=device)
    g_att = seeded(cfg.seed, epoch, 3, dist.rank, device=device)
    t0, seen, loss_sum, correct = time.time(), 0, torch.zeros((), device=device), torch.zeros((), device=device)
    with noise_control(model, generator=g_noise):
        for i in range(run.steps_per_epoch):
            if progress.step >= run.total:
                break
            x, y = _batch(run, perm, i, g_aug)
            loss, logits = _step(run, net, x, y, g_att)
            progress.step += 1
            seen += len(y)
            loss_sum += loss.detach() * len(y)
            correct += (logits.detach().argmax(1) == y).sum()
            bar.update()
            if dist.main and (i % 50 == 0 or i == run.steps_per_epoch - 1):  # .item() waits for the device
                el = time.time() - t0
                bar.set_postfix_str(f"ep {epoch + 1}/{cfg.epochs} loss {loss_sum.item() / seen:.3f} "
                                    f"acc {correct.item() / seen:.3f} "
                                    f"{seen * dist.world / max(el, 1e-9):.0f} img/s")
    epoch_time = time.time() - t0
    return _epoch_record(run, epoch, progress.step, seen, loss_sum, correct, epoch_time)


def _batch(run: _Run, perm: torch.Tensor, i: int, g_aug: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """This rank's share of the ``i``-th batch of ``perm``, augmented, in [0, 1], in the
    memory layout the model runs in."""
    cfg, dist = run.cfg, run.dist
    idx = perm[i * cfg.batch_size : (i + 1) * cfg.batch_size][dist.rank :: dist.world][: run.per_rank]
    x = augment(run.data["train_x"][idx], g_aug).float().div_(255)
    if not run.keep_layout:
        x = x.contiguous()
    y = run.data["train_y"][idx]
    if run.use_cl:
        x = x.contiguous(memory_format=torch.channels_last)
    return x, y


def _step(run: _Run, net: nn.Module, x: torch.Tensor, y: torch.Tensor, g_att: torch.Generator
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimizer step on the batch (its adversarial examples for adversarial training);
    returns the loss and the logits."""
    cfg = run.cfg
    if cfg.adversarial:
        x = adversarial_examples(run.model, x, y, cfg, g_att, run.autocast)
    with run.autocast:
        logits = net(x)
        loss = F.cross_entropy(logits, y, label_smoothing=cfg.label_smoothing)
    run.opt.zero_grad(set_to_none=True)
    loss.backward()
    run.opt.step()
    run.sched.step()
    return loss, logits


def _epoch_record(run: _Run, epoch: int, step: int, seen: int, loss_sum: torch.Tensor, correct: torch.Tensor,
                  epoch_time: float) -> dict[str, Any]:
    """The epoch's log record: counters, learning rate, training loss and accuracy, speed and
    the learned noise parameters."""
    model, world = run.model, run.dist.world
    record: dict[str, Any] = {
        "epoch": epoch + 1, "step": step, "lr": run.sched.get_last_lr()[0],
        "train_loss": loss_sum.item() / max(seen, 1), "train_acc": correct.item() / max(seen, 1),
        "epoch_seconds": round(epoch_time, 2), "images_per_second": round(seen * world / epoch_time, 1),
    }
    if model.noise is not None:
        record["sigma_mean"] = float(model.noise.sigma.detach().mean())
        record["sigma_min"] = model.noise.min_sigma()
    alphas = [float(m.alpha.detach()) for m in noise_modules(model) if isinstance(m, WeightNoise)]
    if alphas:
        record["alpha_mean"], record["alpha_min"] = sum(alphas) / len(alphas), min(alphas)
    return record


# --------------------------------------------------------------------------- end of an epoch


def _close_epoch(run: _Run, progress: _Progress, epoch: int, record: dict[str, Any], bar: tqdm) -> None:
    """Rank 0's end of an epoch: validate, guard against catastrophic overfitting, log the
    record, keep the best weights and write the state."""
    cfg = run.cfg
    _validate(run, epoch, record)
    rob = record.get("val_pgd10_acc")
    progress.stopped = _overfitting(cfg, progress.best, record)
    progress.history.append(record)
    bar.write(json.dumps(record), file=sys.stderr)
    _log(run.log_path, record)
    if progress.stopped:
        run.model.load_state_dict(progress.best["model"])
    elif cfg.adversarial and rob is not None and (not progress.best or rob >= progress.best["val_pgd10_acc"]):
        progress.best = {"epoch": epoch + 1, "val_pgd10_acc": rob,
                         "model": {k: v.detach().clone() for k, v in run.model.state_dict().items()}}
    finished = progress.stopped is not None or epoch + 1 >= cfg.epochs or progress.step >= run.total
    save_state(run.state_path, cfg, run.model, run.opt, run.sched, epoch + 1, progress.step, progress.history,
               progress.best, finished, progress.stopped)


def _validate(run: _Run, epoch: int, record: dict[str, Any]) -> None:
    """Add the held-out clean accuracy to ``record``, and for adversarial training the PGD-10
    accuracy on its first 256 images, under noise seeded by the epoch."""
    cfg, model, data = run.cfg, run.model, run.data
    model.eval()
    with noise_control(model, seed=cfg.seed + epoch):
        record["val_clean_acc"] = _accuracy(model, data["val_x"], data["val_y"])
        if cfg.adversarial:
            k = min(256, len(data["val_x"]))
            record["val_pgd10_acc"] = _pgd_accuracy(model, data["val_x"][:k], data["val_y"][:k], cfg, cfg.seed)
    model.train()


def _overfitting(cfg: TrainConfig, best: dict[str, Any], record: dict[str, Any]) -> str | None:
    """The reason to stop when the held-out PGD-10 accuracy fell below half the best epoch's
    (once that was above 0.2), marking ``record`` with ``co_detected``; else None."""
    rob = record.get("val_pgd10_acc")
    if not (cfg.adversarial and cfg.co_guard and rob is not None):
        return None
    if best and best["val_pgd10_acc"] > 0.2 and rob < 0.5 * best["val_pgd10_acc"]:
        record["co_detected"] = True
        return (f"catastrophic overfitting: held-out PGD-10 accuracy fell from "
                f"{best['val_pgd10_acc']:.3f} (epoch {best['epoch']}) to {rob:.3f}; "
                f"keeping epoch {best['epoch']}'s weights")
    return None


def _stopping(run: _Run, stopped: str | None, bar: tqdm) -> bool:
    """Whether to end the run early; under DDP every rank takes rank 0's decision."""
    if run.dist.world > 1:
        import torch.distributed as tdist

        flag = torch.tensor([1.0 if stopped else 0.0], device=run.device)
        tdist.broadcast(flag, 0)
        if flag.item():
            return True
    if stopped:
        bar.write(f"stopping: {stopped}", file=sys.stderr)
        return True
    return False


def _dump_rank_weights(run: _Run) -> None:
    """For tests: every rank writes its final weights, to compare them across ranks."""
    dump = os.environ.get("RATZOO_DEBUG_DUMP_RANK_WEIGHTS")
    if dump:
        Path(dump).mkdir(parents=True, exist_ok=True)
        torch.save({k: v.detach().cpu() for k, v in run.model.state_dict().items()},
                   Path(dump) / f"rank{run.dist.rank}.pt")
