"""The engine benchmark's data-augmentation row (bench/engine.py calls it; issue 15's target).

What augmentation (engine.data.augment) costs per training step: 784-300-100-10 at batch 32
trained plain, augmented with the next chunk prepared on another thread (the default), and
augmented inline (each chunk made just before it trains); interleaved rounds, medians.  A
busy machine's wall clock blurs the figure, so the training thread's CPU time is measured
too (plain against inline: on an idle second core the prefetching run's cost tends to 0).
Also the time to augment one batch with the compiled kernel and with
scipy.ndimage.affine_transform (the reference, one call per image), which is why the kernel
exists.  Kept out of bench/engine.py so that file stays the bench helper's structure.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

AUGMENT_SETTINGS = {"shift": 2.0, "rotation": 15.0, "flip": 0.5}   # issue 15's target: shift + rotation + flip
TARGET = 0.25                                                       # at most this much more time per step


def augment_row(cfg, data, plain: dict, make_run, measure, args) -> dict:
    """The row: ``make_run(cfg, data, experiment)`` is bench/engine.py's DescentRun, ``measure`` its
    interleaved-rounds timer, ``plain`` the resolved experiment without augmentation."""
    from engine.spec.experiment import resolve_experiment

    augmented = resolve_experiment(dict(plain, data={"name": "fashion_mnist", "augment": AUGMENT_SETTINGS}))
    runners = []
    for name, exp, prefetch in (("plain", plain, None), ("augmented", augmented, True),
                                ("inline", augmented, False)):
        run = make_run(cfg, data, exp)
        run.name = name
        if prefetch is not None:
            run.trainer.augmenter.prefetch = prefetch
        runners.append(run)
    rates = measure(runners, args.rounds, args.round_seconds, args.warmup)   # {runner name: [steps/s per round]}
    med = {name: statistics.median(v) for name, v in rates.items()}
    cpu = {"plain": [], "inline": []}
    for k in range(2 * args.rounds + 1):
        for run in (runners[0], runners[2]) if k % 2 == 0 else (runners[2], runners[0]):
            c0 = time.thread_time()
            steps = run.advance(200)["steps"]
            cpu[run.name].append(steps / max(time.thread_time() - c0, 1e-9))
    kernel_s, scipy_s = _one_batch(data, cfg.batch)
    cost = med["plain"] / med["augmented"] - 1.0
    return {"config": "augment", "label": f"{cfg.label}, augmentation " + ", ".join(
                f"{k} {v:g}" for k, v in AUGMENT_SETTINGS.items()),
            "plain_steps_per_s": med["plain"], "augmented_steps_per_s": med["augmented"],
            "inline_steps_per_s": med["inline"], "cost": cost, "inline_cost": med["plain"] / med["inline"] - 1.0,
            "inline_cpu_cost": statistics.median(cpu["plain"]) / statistics.median(cpu["inline"]) - 1.0,
            "plain_steps_per_cpu_s": statistics.median(cpu["plain"]),
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "kernel_batch_ms": kernel_s * 1e3, "scipy_batch_ms": scipy_s * 1e3,
            "rounds": rates, "met": bool(cost <= TARGET)}


def _one_batch(data, batch: int) -> tuple[float, float]:
    """Best-of seconds to augment one batch: the compiled kernel, and scipy with the same draws."""
    import scipy.ndimage as ndimage
    from engine.data.augment import Augmenter, config_vector, resolve_augment
    from engine.kernels import augment as AK
    from engine.kernels.rng import new_state

    settings = resolve_augment(AUGMENT_SETTINGS, "fashion_mnist", "image", "classification")
    aug = Augmenter(settings, (28, 28), np.zeros(784), np.ones(784), 0, 10)
    x, y = data[0], data[1]
    order, starts = np.arange(len(x), dtype=np.int64), np.array([0, batch], dtype=np.int64)
    aug.rows(x, y, order, starts, 0, 0)   # compile / load
    draws, state, cv = np.zeros((batch, AK.N_DRAW)), new_state(0), config_vector(settings)
    for i in range(batch):
        AK.draw_image(cv, True, 28, 28, state, draws[i])
    images = x[:batch].reshape(-1, 28, 28).astype(np.float64)

    def scipy_batch():
        for i in range(batch):
            ndimage.affine_transform(images[i], draws[i, :4].reshape(2, 2), offset=draws[i, 4:6], order=1,
                                     mode="grid-constant", cval=0.0)

    def best_of(fn, repeat=200):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    return best_of(lambda: aug.rows(x, y, order, starts, 0, 0)), best_of(scipy_batch)


def augment_markdown(d: dict) -> list[str]:
    """The row's sentence for the README's speed section."""
    load = f" (1-minute load average {d['loadavg'][0]:.1f})" if d.get("loadavg") else ""
    return [f"Data augmentation: {d['label']}: {d['augmented_steps_per_s']:,.0f} steps/s against "
            f"{d['plain_steps_per_s']:,.0f} plain{load}, {100 * d['cost']:.0f}% more time per step (at most "
            f"{100 * TARGET:.0f}% allowed: {'met' if d['met'] else '**not met**'}); augmenting each chunk just "
            f"before it trains instead of on the second core costs {100 * d['inline_cost']:.0f}% "
            f"({100 * d['inline_cpu_cost']:.0f}% in CPU time of the training thread).  One batch of 32 images "
            f"takes {d['kernel_batch_ms']:.2f} ms in the compiled kernel and {d['scipy_batch_ms']:.2f} ms through "
            f"scipy.ndimage.affine_transform."]
