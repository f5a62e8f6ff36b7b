"""Small builders shared by the engine tests."""
import numpy as np

from engine.spec.experiment import resolve_experiment
from engine.training.network import Network


def experiment(layers, output="auto", data=None, **sections):
    exp = {"data": data or {"name": "moons", "n_samples": 200}, "model": {"layers": layers,
                                                                        "output": {"activation": output}}}
    exp.update(sections)
    return resolve_experiment(exp)


def network(layers, n_inputs=3, task="classification", n_classes=3, n_targets=1, output="auto", seed=1,
            dtype="float64", **sections):
    sections.setdefault("training", {})
    sections["training"] = dict(sections["training"], dtype=dtype)
    exp = experiment(layers, output, **sections)
    net = Network(exp, n_inputs, task, n_classes, n_targets)
    net.initialize(seed)
    return net


def random_problem(n=16, d=3, classes=3, seed=0, regression_targets=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    if regression_targets:
        return x, rng.normal(size=(n, regression_targets))
    return x, rng.integers(0, classes, n)


def run_comparison(experiment, out, **options):
    """Run a comparison through the one job runner (as ``main.py run`` does); its summary."""
    from engine.events import ComparisonFinished
    from engine.jobs.runner import JobRequest, run_job

    events = list(run_job(JobRequest(experiment, out, **options)))
    return next(e.summary for e in events if isinstance(e, ComparisonFinished))
