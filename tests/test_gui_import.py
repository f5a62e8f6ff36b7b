"""File -> Import model…: the imported network lands in the builder and Train fine-tunes it."""
import numpy as np
import pytest

from gui.importing import import_model, initial_weights
from test_gui_window import FIRST_RUN_TIMEOUT, SMALL, make_window
from test_import import FIXTURES, OnnxNet

pytestmark = pytest.mark.gui


def two_input_model(path):
    """A moons-sized network (2 inputs, 2 classes) written with onnx.helper."""
    net = OnnxNet(n_inputs=2, seed=3)
    net.dense(6)
    net.activation("elu")
    net.batch_norm()
    net.dense(2)
    net.activation("softmax")
    net.save(path, input_shape=[2])
    return path


def test_imported_model_is_in_the_builder_and_train_starts_from_its_weights(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    result = import_model(w, str(two_input_model(tmp_path / "moons.onnx")), show=False)
    model = w.current_experiment()["model"]
    assert [(c["units"], c["activation"], c["batch_norm"]) for c in model["layers"]] == [(6, "elu", "after")]
    assert w.current_experiment()["data"]["name"] == "moons"           # the data stay: fine-tune on them
    assert len(list((tmp_path / "runs").glob("*-imported-moons/import.json"))) == 1
    submitted = []
    original = w.worker.submit
    w.worker.submit = lambda job: (submitted.append(job), original(job))
    record = w.start_run()
    qtbot.waitUntil(lambda: record.finished, timeout=FIRST_RUN_TIMEOUT)
    assert record.status == "finished"
    weights = submitted[0].init_weights
    assert set(weights) == set(result.weights)
    assert all(np.array_equal(weights[k], result.weights[k]) for k in weights)
    changed = w.current_experiment()
    changed["model"]["layers"][0]["units"] = 7
    assert initial_weights(w, changed) is None                           # another network: fresh weights


def test_pytorch_file_takes_the_activations_and_bad_files_write_nothing(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)
    result = import_model(w, str(FIXTURES / "torch/out_linear.safetensors"), activations="tanh,linear", show=False)
    assert result.network.output_activation == "linear"
    assert w.current_experiment()["model"]["layers"][0]["activation"] == "tanh"
    before = sorted((tmp_path / "runs").iterdir())
    assert import_model(w, str(FIXTURES / "keras/bad/lambda.keras"), show=False) is None
    assert "Lambda" in w.statusBar().currentMessage()
    assert sorted((tmp_path / "runs").iterdir()) == before
