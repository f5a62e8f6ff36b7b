"""Comatose units on preset 04: per variant and seed, the fraction of hidden units whose
pre-activation is <= 0 on every probe row after each epoch, and how many of the units comatose
after epoch 1 are awake again after epoch 3.  Usage: PYTHONPATH=. .venv/bin/python tools/measure_comatose.py [variant names]  (~10 min)"""
import json, sys
import numpy as np
from engine.spec.experiment import load_experiment
from engine.spec.overrides import apply_overrides
from engine.training.trainer import Trainer
from engine.events import EpochEnd, StepMetrics

base = load_experiment("04-dying-relus")
variants = base.pop("compare")["variants"]
ACT = {"relu": lambda z, a: np.maximum(z, 0), "leaky_relu": lambda z, a: np.where(z > 0, z, a * z),
       "elu": lambda z, a: np.where(z > 0, z, a * np.expm1(np.minimum(z, 0)))}

def masks(trainer):
    w = trainer.net.state_dict()
    h = trainer.x_probe.astype(np.float64)
    out = []
    layers = trainer.experiment["model"]["layers"]
    for i, layer in enumerate(layers):
        z = h @ w[f"layers.{i}.kernel"] + w[f"layers.{i}.bias"]
        out.append((z <= 0).all(axis=0))
        h = ACT[layer["activation"]](z, layer.get("activation_params", {}).get("alpha", 1.0))
    return out

result = {}
wanted = sys.argv[1:] or ["ReLU", "leaky ReLU 0.01", "leaky ReLU 0.2", "ELU"]
for v in variants:
    if v["name"] not in wanted:
        continue
    for seed in (42, 43, 44):
        exp = apply_overrides(dict(base, seed=seed), v.get("overrides"))
        t = Trainer(exp)
        per_epoch, last = [], None
        for ev in t.run():
            if isinstance(ev, StepMetrics):
                last = ev
            if isinstance(ev, EpochEnd):
                m = masks(t)
                kernel = np.asarray(last.comatose_count[:-1])
                mine = np.array([x.sum() for x in m], float)
                assert last.step == ev.step and np.array_equal(kernel, mine), (kernel, mine)
                per_epoch.append(m)
        first, end = per_epoch[0], per_epoch[-1]
        woke = [int((f & ~e).sum()) for f, e in zip(first, end)]
        result[f"{v['name']} seed {seed}"] = {
            "comatose_pct_per_layer": [[round(100 * x.mean(), 1) for x in m] for m in per_epoch],
            "dead_pct_last": [round(100 * float(x), 1) for x in last.dead_fraction[:-1]],
            "comatose_after_epoch1": int(sum(x.sum() for x in first)),
            "of_which_awake_after_epoch3": int(sum(woke)),
            "comatose_after_epoch3": int(sum(x.sum() for x in end)),
            }
        print(v["name"], seed, json.dumps(result[f"{v['name']} seed {seed}"]), flush=True)
print(json.dumps(result))
