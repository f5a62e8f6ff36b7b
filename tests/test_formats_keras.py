"""Keras 3 export: file layout, and a real ``model.load_weights`` into the
generated equivalent model (keras is in requirements-dev.txt, so `make test`
runs this oracle; a missing keras fails instead of skipping)."""
import json
import os

import numpy as np
import pytest

from engine.catalog.activations import hidden_activation_names
from test_formats import inputs, make_net

KERAS_CHECK = """
import importlib.util, json, os, sys
os.environ.setdefault("KERAS_BACKEND", "torch")
import numpy as np, keras
x = np.load(sys.argv[1]).astype(np.float32)
worst = {}
for d in sys.argv[2:]:
    spec = importlib.util.spec_from_file_location("model_keras", os.path.join(d, "model_keras.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model()
    model.load_weights(os.path.join(d, "model.weights.h5"))
    got = keras.ops.convert_to_numpy(model(x, training=False))
    worst[d] = float(np.max(np.abs(got - np.load(os.path.join(d, "expected.npy")))))
print(json.dumps(worst))
"""


def _keras_python():
    """A Python that imports keras: DESCENT_KERAS_PYTHON, or this one.  Keras is a
    test requirement (the oracle for the export), so its absence fails the test."""
    import importlib.util
    import sys

    configured = os.environ.get("DESCENT_KERAS_PYTHON")
    if configured:
        return configured
    if importlib.util.find_spec("keras") is None:
        pytest.fail("keras is not installed: `pip install -r requirements-dev.txt` "
                    "(or set DESCENT_KERAS_PYTHON to a Python that has it)")
    return sys.executable


def test_keras_file_layout_without_keras(tmp_path):
    import h5py   # a runtime requirement (the exporter writes with it)

    from engine.formats.keras_h5 import save_keras

    net = make_net("prelu", "before", dropout=0.2)
    save_keras(tmp_path / "model.weights.h5", net)
    with h5py.File(tmp_path / "model.weights.h5") as f:
        assert sorted(f["layers"]) == ["batch_normalization", "batch_normalization_1", "dense", "dense_1",
                                       "dense_2", "dropout", "dropout_1", "p_re_lu", "p_re_lu_1"]
        assert np.array_equal(f["layers/dense_1/vars/0"][...], net.tensor("layers.1.kernel").astype(np.float32))
        assert np.array_equal(f["layers/batch_normalization/vars/3"][...],
                              net.tensor("layers.0.bn.moving_variance").astype(np.float32))
    assert "def build_model" in (tmp_path / "model_keras.py").read_text()


def test_keras_weights_load_into_keras(tmp_path):
    """The real check: Keras 3 builds the model from model_keras.py, loads the
    file with model.load_weights and predicts like Descent.  Uses this Python's
    keras, or DESCENT_KERAS_PYTHON=/path/to/python-with-keras."""
    import subprocess

    python = _keras_python()
    from engine.formats.keras_h5 import save_keras

    x = inputs()
    np.save(tmp_path / "x.npy", x)
    folders = []
    cases = [(a, bn, "auto") for a in hidden_activation_names() for bn in ("none", "before", "after")]
    cases += [("relu", "before", "logistic"), ("relu", "after", "linear")]
    for activation, bn, output in cases:
        kw = {"logistic": dict(n_classes=2), "linear": dict(task="regression", n_classes=0, n_targets=2)}.get(output, {})
        net = make_net(activation, bn, output=output, dropout=0.1,
                       params={"alpha": 0.2} if activation in ("leaky_relu", "elu") else None, **kw)
        folder = tmp_path / f"{activation}-{bn}-{output}"
        save_keras(folder / "model.weights.h5", net)
        np.save(folder / "expected.npy", net.predict(x))
        folders.append(str(folder))
    result = subprocess.run([python, "-c", KERAS_CHECK, str(tmp_path / "x.npy"), *folders],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    worst = json.loads(result.stdout.strip().splitlines()[-1])
    print(f"Keras max abs difference over {len(worst)} cases: {max(worst.values()):.2e}")
    assert max(worst.values()) < 1e-5, {k: v for k, v in worst.items() if v >= 1e-5}
