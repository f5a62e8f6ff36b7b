"""Data augmentation (issue 15): the warps against scipy.ndimage, the batches against a
plain-Python reference, seeds and resume bit for bit, the schema's errors, and inference
untouched by it."""
import json

import numpy as np
import pytest
import scipy.ndimage as ndimage

from engine.cli import main
from engine.data.augment import AUGMENT_PARAMS, Augmenter, describe, resolve_augment
from engine.errors import ExperimentError
from engine.events import RunFinished
from engine.formats import load_any
from engine.formats.predict import predict_file
from engine.formats.weights import save_weights
from engine.kernels import augment as K
from engine.kernels.rng import new_state
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer
from tests.test_resume import assert_same_state, run
from tests.test_resume import test_stop_and_resume_equals_uninterrupted as check_stop_and_resume

H, W = 9, 7          # not square: rows and columns must not be swapped


def draws(n, seed, **settings):
    cfg = np.zeros(K.N_CFG)
    for key, column in (("shift", K.CFG_SHIFT), ("rotation", K.CFG_ROTATION), ("scale", K.CFG_SCALE),
                        ("flip", K.CFG_FLIP), ("crop_padding", K.CFG_CROP_PADDING),
                        ("brightness", K.CFG_BRIGHTNESS), ("contrast", K.CFG_CONTRAST)):
        cfg[column] = settings.get(key, 0.0)
    out, state = np.zeros((n, K.N_DRAW)), new_state(seed)
    for i in range(n):
        K.draw_image(cfg, True, H, W, state, out[i])
    return out


def scipy_warp(image, draw):
    return ndimage.affine_transform(image, draw[:4].reshape(2, 2), offset=draw[4:6], order=1,
                                    mode="grid-constant", cval=0.0)


@pytest.mark.parametrize("settings", [
    {"shift": 2.5}, {"rotation": 180.0}, {"scale": 0.5}, {"flip": 1.0}, {"crop_padding": 3},
    {"shift": 6.0, "rotation": 40.0, "scale": 0.3, "flip": 0.5},   # much of the image pushed off its edges
])
def test_warp_matches_scipy_affine_transform(settings):
    images = np.random.default_rng(1).random((40, H, W))
    d = draws(40, 7, **settings)
    out = np.zeros_like(images)
    K.warp_images(images, d, out)
    for i in range(len(images)):
        np.testing.assert_allclose(out[i], scipy_warp(images[i], d[i]), rtol=0, atol=1e-5)
    assert not np.array_equal(out, images)   # something moved


def test_draws_are_the_transform_they_name():
    """A flip mirrors columns exactly; a whole-pixel crop offset moves pixels exactly; nothing else changes."""
    image = np.random.default_rng(2).random((H, W))
    flipped, shifted = draws(1, 0, flip=1.0)[0], draws(1, 3, crop_padding=2)[0]
    out = np.zeros((H, W))
    K.warp(image, flipped, out)
    assert np.array_equal(out, image[:, ::-1])
    np.testing.assert_array_equal(flipped[:4], [1.0, 0.0, 0.0, -1.0])
    K.warp(image, shifted, out)
    dr, dc = -int(round(shifted[K.DRAW_OFF_R])), -int(round(shifted[K.DRAW_OFF_C]))
    assert (dr, dc) != (0, 0) and abs(dr) <= 2 and abs(dc) <= 2
    np.testing.assert_allclose(out, ndimage.shift(image, (dr, dc), order=0, mode="constant"), atol=1e-12)


def test_chunk_matches_a_python_reference_and_ignores_chunking():
    """augment_chunk = unstandardize, scipy's warp, contrast about the mean, brightness, standardize,
    with each batch's generator seeded from (seed, epoch, batch) alone."""
    rng = np.random.default_rng(3)
    n, settings = 50, {"shift": 1.5, "rotation": 20.0, "scale": 0.2, "flip": 0.5, "brightness": 0.1,
                       "contrast": 0.3}
    aug = resolve_augment(dict(settings, flip_exclude=[1]), "npz", "file", "classification")
    mean, std = rng.random(H * W), 0.5 + rng.random(H * W)
    x = rng.standard_normal((n, H * W))
    y = rng.integers(0, 3, n)
    order = rng.permutation(n).astype(np.int64)
    starts = np.array([0, 8, 16, 24, 32, 40, 48, 50], dtype=np.int64)
    a = Augmenter(aug, (H, W), mean, std, 5, 3, np.float64)
    whole = a.rows(x, y, order, starts, 2, 0)
    parts = np.concatenate([a.rows(x, y, order, starts[:3], 2, 0), a.rows(x, y, order, starts[2:], 2, 2)])
    assert np.array_equal(whole, parts)
    assert not np.array_equal(whole, a.rows(x, y, order, starts, 3, 0))   # another epoch, other draws
    cfg = np.array([settings.get(k, 0.0) for k in ("shift", "rotation", "scale", "flip", "crop_padding",
                                                   "brightness", "contrast", "noise")])
    for b in range(len(starts) - 1):
        state = K.batch_state(5, 2, b)
        for k in range(starts[b], starts[b + 1]):
            row, draw = order[k], np.zeros(K.N_DRAW)
            K.draw_image(cfg, y[order[k]] != 1, H, W, state, draw)
            warped = scipy_warp((x[row] * std + mean).reshape(H, W), draw)
            centre = warped.mean()
            expected = (warped - centre) * draw[K.DRAW_CONTRAST] + centre + draw[K.DRAW_BRIGHTNESS]
            np.testing.assert_allclose(whole[k] * std + mean, expected.ravel(), rtol=0, atol=1e-5)
            if y[row] == 1:   # excluded from flipping
                assert draw[K.DRAW_M11] * draw[K.DRAW_M00] >= 0


def test_noise_has_the_asked_spread():
    aug = resolve_augment({"noise": 0.2}, "npz", "file", "classification")
    a = Augmenter(aug, (H, W), np.zeros(H * W), np.ones(H * W), 0, 1, np.float64)
    x = np.zeros((400, H * W))
    rows = a.rows(x, np.zeros(0, np.int64), np.arange(400), np.array([0, 400]), 0, 0)
    assert abs(rows.std() - 0.2) < 0.005 and abs(rows.mean()) < 0.005


# ----------------------------------------------------------------------------- training with it

@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """An npz of 8x8 'images' in three classes (a bar at a class-specific place plus noise)."""
    rng = np.random.default_rng(0)
    n = 150
    y = np.arange(n) % 3
    x = rng.random((n, 8, 8)) * 0.3
    for i, c in enumerate(y):
        x[i, 2 * c + 1:2 * c + 3, :] += 0.7
    path = tmp_path_factory.mktemp("augment") / "images.npz"
    np.savez(path, x=x.astype(np.float32), y=y)
    return path


def image_experiment(path, augment=None, **training):
    data = {"name": "npz", "path": str(path), "test_split": 0.2}
    if augment is not None:
        data["augment"] = augment
    return resolve_experiment({"name": "augment", "seed": 4, "data": data,
                               "model": {"layers": [{"units": 12, "activation": "relu", "dropout": 0.1}]},
                               "optimizer": {"name": "adam", "learning_rate": 0.01},
                               "training": dict({"epochs": 3, "batch_size": 16, "log_every": 1}, **training)})


AUG = {"shift": 1.0, "rotation": 15.0, "flip": 0.5, "noise": 0.05}


def test_same_seed_same_weights_and_augmentation_changes_them(images):
    a, b = Trainer(image_experiment(images, AUG)), Trainer(image_experiment(images, AUG))
    b.augmenter.prefetch = False   # rows made inline or on the other thread: the same bits
    run(a), run(b)
    assert_same_state(a, b)
    plain = Trainer(image_experiment(images))
    assert plain.augmenter is None
    run(plain)
    assert not np.array_equal(plain.net.theta, a.net.theta)


def test_validation_and_test_are_never_augmented(images):
    t = Trainer(image_experiment(images, AUG))
    run(t)
    plain = Trainer(image_experiment(images))
    plain.net.load_state_dict(t.net.state_dict())
    for split in ("val", "test"):
        assert t.evaluate_split(split) == plain.evaluate_split(split)
    assert np.array_equal(t.x_probe, plain.x_probe)


@pytest.mark.parametrize("stop_at", [3, 8, 20])   # 8 steps per epoch: mid-epoch and on a boundary
def test_resume_is_bit_exact_with_augmentation(images, stop_at):
    """test_resume's check (stop, checkpoint, restore, finish = never interrupted) with augmentation on."""
    exp = image_experiment(images, AUG)
    full = Trainer(exp)
    _, full_losses = run(full)
    check_stop_and_resume((exp, full, full_losses), stop_at)


# ----------------------------------------------------------------------------- the schema

@pytest.mark.parametrize("data, message", [
    ({"name": "spirals", "augment": {"shift": 2}}, "data.augment: dataset 'spirals' is not image data"),
    ({"name": "fashion_mnist", "augment": {"shfit": 2}}, "unknown key data.augment.shfit"),
    ({"name": "fashion_mnist", "augment": {"rotation": 270}}, "data.augment.rotation must be"),
    ({"name": "fashion_mnist", "augment": {"flip": 1.5}}, "data.augment.flip must be"),
    ({"name": "fashion_mnist", "augment": {"flip_exclude": [-1]}}, "data.augment.flip_exclude[0] must be"),
    ({"name": "fashion_mnist", "augment": {"crop_padding": 1.5}}, "data.augment.crop_padding must be an integer"),
    ({"name": "fashion_mnist", "augment": [1]}, "data.augment must be an object"),
    ({"name": "fashion_mnist", "task": "reconstruction", "augment": {"noise": 0.1}},
     "data.augment: the reconstruction task"),
])
def test_schema_errors_name_the_key(data, message):
    with pytest.raises(ExperimentError) as err:
        resolve_experiment({"data": data})
    assert message in str(err.value)


def test_every_setting_is_documented_with_a_range():
    for key, param in AUGMENT_PARAMS.items():
        assert param.doc and param.describe_range(), key
        assert not param.default, key   # off unless asked for


def test_files_without_images_are_refused_when_loaded(tmp_path, images):
    flat = tmp_path / "flat.npz"
    np.savez(flat, x=np.random.default_rng(0).random((30, 4)), y=np.arange(30) % 2)
    with pytest.raises(ExperimentError, match=r"data\.augment: 'flat.npz' holds no images"):
        Trainer(image_experiment(flat, AUG))
    with pytest.raises(ExperimentError, match=r"data\.augment\.flip_exclude: class 5 does not exist"):
        Trainer(image_experiment(images, {"flip": 0.5, "flip_exclude": [5]}))


def test_cli_refuses_augmenting_non_image_data_with_exit_2(tmp_path, capsys):
    path = tmp_path / "exp.json"
    path.write_text(json.dumps({"data": {"name": "moons", "augment": {"rotation": 10}}}))
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "data.augment" in err and "Traceback" not in err


def test_without_the_section_nothing_changes_in_the_resolved_experiment():
    """Experiments written before augmentation existed resolve to exactly what they did."""
    assert "augment" not in resolve_experiment({"data": {"name": "fashion_mnist"}})["data"]
    assert "augment" not in resolve_experiment({"data": {"name": "fashion_mnist", "augment": None}})["data"]
    assert describe(None) == "no data augmentation"
    on = resolve_experiment({"data": {"name": "fashion_mnist", "augment": {"shift": 2, "flip": 0.5}}})
    assert describe(on["data"]["augment"]) == "data augmentation: shift ±2 px, flip p=0.5"


# ----------------------------------------------------------------------------- inference

def test_predict_and_onnx_ignore_augmentation(images, tmp_path):
    """A network trained with augmentation predicts, and exports, exactly as the same weights
    from a run without it: nothing about augmentation reaches inference."""
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "run"
    exp_path = tmp_path / "exp.json"
    exp = image_experiment(images, AUG)
    exp_path.write_text(json.dumps(exp))
    assert main(["run", str(exp_path), "--out", str(out), "--quiet"]) == 0
    weights, metadata = load_any(out / "weights.safetensors")
    assert metadata["experiment"]["data"]["augment"]["rotation"] == 15.0   # recorded, not used
    plain_meta = json.loads(json.dumps(metadata))
    del plain_meta["experiment"]["data"]["augment"]
    plain = save_weights(tmp_path / "plain.safetensors", weights, plain_meta)
    inputs = tmp_path / "inputs.npz"
    with np.load(images) as z:
        x = z["x"].reshape(len(z["x"]), -1)
    np.savez(inputs, x=x)
    predicted = predict_file(out / "weights.safetensors", inputs)
    assert predicted == predict_file(plain, inputs)
    onnx_files = []
    for name, source in (("aug", out), ("plain", plain)):
        target = tmp_path / f"{name}.onnx"
        folder = source if source.is_dir() else None
        if folder is None:   # a run folder holding the plain-metadata weights
            folder = tmp_path / "plain_run"
            folder.mkdir()
            for f in out.iterdir():
                if f.is_file() and f.name != "weights.safetensors":
                    (folder / f.name).write_bytes(f.read_bytes())
            (folder / "weights.safetensors").write_bytes(plain.read_bytes())
        assert main(["export", str(folder), "--format", "onnx", "--out", str(target)]) == 0
        onnx_files.append(target)
    outputs = [ort.InferenceSession(str(f)).run(None, {ort.InferenceSession(str(f)).get_inputs()[0].name: x})[0]
               for f in onnx_files]
    assert np.array_equal(outputs[0], outputs[1])
    probs = np.array([[float(v) for v in line.split(",")[-3:]] for line in predicted.splitlines()[1:]])
    np.testing.assert_allclose(outputs[0], probs, atol=1e-5)


def test_transfer_cache_is_turned_off_with_a_note(images):
    """Features cached once from plain images would freeze the augmentation: the frozen phase
    trains uncached instead, and the stage says why."""
    from engine.jobs.stages import build_report, format_report, run_stages
    from engine.spec.stages import StageFinished

    data = {"name": "npz", "path": str(images), "augment": {"shift": 1.0, "flip": 0.5}}
    exp = resolve_experiment({
        "name": "augment-stages", "seed": 3, "data": data,
        "model": {"layers": [{"units": 8, "activation": "relu"}]},
        "training": {"epochs": 1, "batch_size": 16},
        "stages": {"seeds": 1, "list": [
            {"name": "a"},
            {"name": "b", "reuse": {"from": "a", "layers": "all_but_output"},
             "phases": [{"name": "frozen", "epochs": 1, "cache": True, "measure_caching": True}]}]}})
    finished = [e for e in run_stages(exp) if isinstance(e, StageFinished)]
    b = finished[-1].summary
    assert b["phases"][0]["cached"] is False and "caching" not in b
    assert "frozen-layer cache off: data augmentation: shift ±1 px, flip p=0.5" in b["notes"][0]
    report = build_report(exp["stages"], {"a": [finished[0].summary], "b": [b]})
    assert "frozen-layer cache off" in format_report(report)
