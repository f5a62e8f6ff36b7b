"""Run folders both ways: what RunWriter writes, read_run reads back, column for column and value
for value; a killed run reads as interrupted; a bad folder is one clear error naming the file.
The window, the comparison report, export and predict all read through the same reader."""
import csv
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from engine.cli import main
from engine.control import RunControl
from engine.errors import DescentError, ExperimentError
from engine.events import EpochEnd, RunStarted, StepMetrics
from engine.formats.runfolder import RunFolderError, read_run, read_run_info, read_run_status, run_weights_file
from engine.formats.runlayout import EPOCH_FIELDS, HISTORY_FIELDS, PER_LAYER_FIELDS, WEIGHTS_FORMATS
from engine.formats.runstore import RunWriter
from engine.spec.experiment import resolve_experiment
from engine.training.trainer import Trainer

# synthetic 2-D data, a few steps; a ReLU layer (dead units) and a tanh layer (saturation) so that
# every per-layer column holds numbers somewhere; 1cycle cycles the momentum, so that column too
TINY = {"name": "tiny-runstore", "seed": 3, "data": {"name": "moons", "n_samples": 120},
        "model": {"layers": [{"units": 6, "activation": "relu"}, {"units": 5, "activation": "tanh"}]},
        "optimizer": {"name": "momentum", "learning_rate": 0.1}, "schedule": {"name": "onecycle", "max_lr": 0.1},
        "training": {"epochs": 2, "batch_size": 16, "log_every": 2}}


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """(folder, trainer, events) of a tiny run written by RunWriter."""
    folder = tmp_path_factory.mktemp("runs") / "run"
    trainer = Trainer(resolve_experiment(TINY))
    writer = RunWriter(folder, "test")
    writer.attach(trainer)
    events = []
    for event in trainer.run(RunControl()):
        writer.handle(event)
        events.append(event)
    return folder, trainer, events


def of(events, kind):
    return [e for e in events if isinstance(e, kind)]


def csv_header(path):
    with open(path, newline="", encoding="utf-8") as f:
        return next(csv.reader(f))


def copy_of(written, path):
    shutil.copytree(written[0], path)
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def cut_last_line(path):
    """Leave the last row half written, as a process killed while writing it does."""
    text = path.read_text()
    start = text.rstrip("\n").rfind("\n") + 1
    path.write_text(text[:start + (len(text) - start) // 2])


# ----------------------------------------------------------------------------- every column, every value


def test_every_column_the_writer_writes_is_read_back_with_its_values(written):
    folder, trainer, events = written
    run = read_run(folder)
    steps, epochs = of(events, StepMetrics), of(events, EpochEnd)
    assert len(steps) >= 3 and len(epochs) == 2
    assert set(run.history_columns()) == set(csv_header(folder / "history.csv"))
    assert set(run.epochs) == set(csv_header(folder / "epochs.csv"))
    for name in HISTORY_FIELDS:
        np.testing.assert_array_equal(run.history[name], [getattr(e, name) for e in steps], err_msg=name)
    for name in PER_LAYER_FIELDS:
        expected = np.array([getattr(e, name) for e in steps])
        assert run.per_layer[name].shape == expected.shape == (len(steps), 3)
        np.testing.assert_array_equal(run.per_layer[name], expected, err_msg=name)
    for name in EPOCH_FIELDS:
        np.testing.assert_array_equal(run.epochs[name], [getattr(e, name) for e in epochs], err_msg=name)
    # the columns the earlier readers dropped hold numbers
    assert (run.per_layer["bias_grad_norm"] > 0).any() and np.isfinite(run.epochs["sparsity"]).all()
    assert not run.history["step"].flags.writeable
    started = of(events, RunStarted)[0]
    assert run.experiment == json.loads(json.dumps(started.experiment)) and run.n_layers == len(started.layers)
    assert run.status == run.summary["status"] == "finished"
    assert run.weights_path == folder / "weights.safetensors" and run.checkpoint_path == folder / "checkpoint.npz"
    assert run.data["mean"] == trainer.data.mean.tolist() and run.metadata["app_version"] == "test"
    steps_axis, loss = run.curve("loss")
    np.testing.assert_array_equal(loss, [e.loss for e in steps])
    assert list(run.curve("val_accuracy")[0]) == [e.step for e in epochs] and run.curve("nothing") is None


def test_the_window_reads_a_folder_as_it_saw_the_run_live(written, tmp_path):
    from gui.records import RunRecord, load_folder_curves, record_from_folder

    folder, _, events = written
    live = RunRecord(1, {})
    live.ingest(events)
    read = record_from_folder(folder, 2)
    assert not read.loaded and read.status == "finished" and read.experiment["name"] == "tiny-runstore"
    load_folder_curves(read)
    assert read.step == live.step and read.epoch == live.epoch and read.task == live.task
    for name in ("log_step", "log_epoch", "lr", "momentum"):
        np.testing.assert_array_equal(getattr(read, name).data, getattr(live, name).data, err_msg=name)
    for key in PER_LAYER_FIELDS:
        np.testing.assert_array_equal(read.per_layer[key].data, live.per_layer[key].data, err_msg=key)
    for key in EPOCH_FIELDS:
        np.testing.assert_array_equal(read.epochs[key].data, live.epochs[key].data, err_msg=key)
    broken = copy_of(written, tmp_path / "broken")
    (broken / "history.csv").write_text("step,epoch\n1,oops\n")
    record = record_from_folder(broken, 3)
    load_folder_curves(record)
    assert "history.csv" in record.reason and len(record.log_step) == 0


# ----------------------------------------------------------------------------- killed runs


def test_a_killed_run_reads_as_interrupted_without_its_cut_line(written, tmp_path):
    _, _, events = written
    killed = copy_of(written, tmp_path / "killed")
    for name in ("weights.safetensors", "weights.npz", "checkpoint.npz"):
        (killed / name).unlink(missing_ok=True)
    (killed / "summary.json").write_text(json.dumps({"status": "running", "pid": dead_pid()}))
    cut_last_line(killed / "history.csv")
    run = read_run(killed)
    assert run.status == read_run_status(killed) == "interrupted"
    steps = of(events, StepMetrics)[:-1]
    np.testing.assert_array_equal(run.history["step"], [e.step for e in steps])
    np.testing.assert_array_equal(run.per_layer["saturated"], [e.saturated for e in steps])
    assert run.weights_path is None and run.checkpoint_path is None and run.metadata == {}
    assert len(run.epochs["epoch"]) == 2
    # a run still going in another process: the same
    (killed / "summary.json").write_text(json.dumps({"status": "running", "pid": os.getpid()}))
    assert read_run(killed).status == "running" and len(read_run(killed).history["step"]) == len(steps)
    # the same cut in a run that says it finished is damage, not an interruption
    (killed / "summary.json").write_text(json.dumps({"status": "finished"}))
    with pytest.raises(RunFolderError, match=rf"history\.csv, line {len(steps) + 2}: \d+ values for \d+ columns"):
        read_run(killed)


# ----------------------------------------------------------------------------- bad folders


def _bad_folders(written, tmp_path):
    """(folder, pattern of the error message) for damaged and non-run folders."""
    def broken(name, file, text):
        folder = copy_of(written, tmp_path / name)
        if text is None:
            (folder / file).unlink()
        else:
            (folder / file).write_text(text)
        return folder

    header = ",".join(csv_header(written[0] / "history.csv"))
    a_file = tmp_path / "a-file.txt"
    a_file.write_text("x")
    (tmp_path / "empty").mkdir()
    comparison = tmp_path / "cmp"
    comparison.mkdir()
    (comparison / "comparison.json").write_text("{}")
    staged = tmp_path / "staged"
    (staged / "seed-7" / "01-source").mkdir(parents=True)
    for name in ("experiment.json", "summary.json"):
        shutil.copy(written[0] / name, staged / name)
    return [
        (tmp_path / "nowhere", r"nowhere is not a run folder: it does not exist"),
        (a_file, r"a-file\.txt is not a run folder: it is a file"),
        (tmp_path / "empty", r"empty is not a run folder: it has no experiment\.json"),
        (comparison, r"has no experiment\.json; it is a comparison folder"),
        (staged, r"history\.csv is missing; it is a staged run's folder"),
        (broken("exp-text", "experiment.json", "{"), r"experiment\.json is not valid JSON"),
        (broken("exp-list", "experiment.json", "[1]"), r"experiment\.json holds a JSON list, not an object"),
        (broken("summary", "summary.json", "not json"), r"summary\.json is not valid JSON"),
        (broken("no-history", "history.csv", None), r"history\.csv is missing"),
        (broken("no-epochs", "epochs.csv", ""), r"epochs\.csv is empty: no header line"),
        (broken("not-number", "history.csv", header + "\n" + ",".join(["1"] * header.count(",")) + ",abc\n"),
         r"history\.csv, line 2, column saturated_2: 'abc' is not a number"),
        (broken("renamed", "history.csv", header.replace("loss,", "lost,", 1) + "\n"),
         r"history\.csv has no column\(s\) loss"),
        (broken("layers", "history.csv", header.replace("act_std_1,", "") + "\n"),
         r"history\.csv: per-layer columns act_std_<i> are for layers \[0, 2\], expected 0 to 2"),
        (broken("weights", "weights.safetensors", "garbage"), r"cannot read the metadata of .*weights\.safetensors"),
    ]


def test_bad_folders_raise_one_clear_error_naming_the_file(written, tmp_path):
    for folder, pattern in _bad_folders(written, tmp_path):
        with pytest.raises(RunFolderError, match=pattern):
            read_run(folder)


def test_export_and_predict_read_run_folders_through_the_reader(written, tmp_path, capsys):
    folder, trainer, _ = written
    points = tmp_path / "points.csv"
    np.savetxt(points, trainer.data.to_original(trainer.data.x_val[:5]), delimiter=",")
    assert main(["predict", str(folder), str(points), "--out", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(run_weights_file(folder)), str(points), "--out", str(tmp_path / "b.csv")]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    capsys.readouterr()
    no_weights = copy_of(written, tmp_path / "no-weights")
    for name in ("weights.safetensors", "weights.npz"):
        (no_weights / name).unlink(missing_ok=True)
    for argv in (["export", str(no_weights)], ["export", str(tmp_path / "cmp-nothing")],
                 ["predict", str(tmp_path), str(points)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error:") and argv[1] in err[0], (argv, err)


# ----------------------------------------------------------------------------- comparison folders


def test_comparison_curves_read_every_column_through_the_reader(written, tmp_path):
    from engine.jobs.compare_report import comparison_curves, read_comparison

    folder = tmp_path / "cmp"
    folder.mkdir()
    for name in ("a-seed1", "b-seed1"):
        copy_of(written, folder / name)
    summary = {"variants_order": ["a", "b"], "metric": "val_accuracy",
               "variants": {n: {"runs": [{"folder": f"{n}-seed1"}]} for n in ("a", "b")}}
    (folder / "comparison.json").write_text(json.dumps(summary))
    run = read_run(written[0])
    for column, (steps, values) in (("bias_grad_norm_1", (run.history["step"], run.per_layer["bias_grad_norm"][:, 1])),
                                    ("sparsity", (run.epochs["step"], run.epochs["sparsity"]))):
        curve = comparison_curves(folder, column)["a"]
        np.testing.assert_array_equal(curve["steps"], steps)
        np.testing.assert_array_equal(curve["mean"], values)
    (folder / "b-seed1" / "epochs.csv").write_text("epoch,step\n")
    with pytest.raises(RunFolderError, match=r"b-seed1.epochs\.csv has no column\(s\) train_loss"):
        comparison_curves(folder, "val_accuracy")
    _, curves = read_comparison(folder)   # the report leaves out what it cannot read
    assert len(curves["val_accuracy"]["a"]["steps"]) == 2 and len(curves["val_accuracy"]["b"]["steps"]) == 0
    (folder / "comparison.json").write_text(json.dumps({"variants_order": ["a"], "variants": {}}))
    for read in (read_comparison, comparison_curves):
        with pytest.raises(ExperimentError, match=r"comparison\.json: not a comparison summary"):
            read(folder)
    with pytest.raises(DescentError, match="no comparison.json here"):
        comparison_curves(tmp_path)


# ----------------------------------------------------------------------------- issue 13: hostile disks


LONG = dict(TINY, training=dict(TINY["training"], epochs=6, log_every=1))


def _path_of(fd: int) -> str:
    return os.readlink(f"/proc/self/fd/{fd}")


def fill_disk(monkeypatch, target: str, good: int):
    """Writes to the file ``target`` (or its temporary copy) fail with ENOSPC after ``good`` of them
    succeeded; a failing line write puts half its bytes on disk first, as a real full disk does."""
    import errno

    import engine.fileio as fileio
    count = {"n": 0}

    def full(fd):
        if target not in os.path.basename(_path_of(fd)):
            return False
        count["n"] += 1
        return count["n"] > good

    real_write, real_fsync = fileio._write, os.fsync

    def write(fd, data):   # a log's line (a run's CSVs)
        if target.endswith(".csv") and full(fd):
            real_write(fd, bytes(data[:len(data) // 2]))
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    def fsync(fd):   # atomic writes: the temporary file's data do not fit
        if not target.endswith(".csv") and full(fd):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_fsync(fd)

    monkeypatch.setattr(fileio, "_write", write)
    monkeypatch.setattr(os, "fsync", fsync)


@pytest.mark.parametrize("target, good", [("history.csv", 6), ("history.csv", 40), ("epochs.csv", 2),
                                          ("summary.json", 1), ("weights.safetensors", 0), ("experiment.json", 0)])
def test_a_full_disk_ends_the_run_as_failed_with_complete_rows(tmp_path, capsys, monkeypatch, target, good):
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps(LONG))
    fill_disk(monkeypatch, target, good)
    folder = tmp_path / "run"
    capsys.readouterr()
    assert main(["run", str(exp), "--out", str(folder), "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: disk full while writing") and target in err[0], err
    monkeypatch.undo()
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["reason"].startswith("disk full")
    if target != "experiment.json":
        run = read_run(folder)   # every line complete: a failed run's reader accepts no cut line
        rows = len(run.history["step"])
        assert run.status == "failed" and (rows == good - 1 if target == "history.csv" else rows > 0)  # header: 1
        for name in ("history.csv", "epochs.csv"):
            assert (folder / name).read_text().endswith("\n")
    if target == "summary.json":   # the weights were written before the disk filled: kept
        assert "weights.safetensors" in {p.name for p in folder.iterdir()}


def _unshare_works() -> bool:
    try:
        return subprocess.run(["unshare", "-m", "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not _unshare_works(), reason="needs unshare -m (root) to mount a small tmpfs")
def test_a_real_full_disk(tmp_path):
    """A 128 KiB tmpfs fills mid-run: status failed, complete rows, one line, exit 2."""
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps(dict(LONG, training=dict(LONG["training"], epochs=200))))
    mnt, kept = tmp_path / "mnt", tmp_path / "kept"
    mnt.mkdir()
    script = (f'mount -t tmpfs -o size=128k tmpfs "{mnt}" && "{sys.executable}" main.py run "{exp}" '
              f'--out "{mnt}/run" --quiet; echo "status=$?" >&2; cp -r "{mnt}/run" "{kept}"')
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                            cwd=os.path.dirname(os.path.dirname(__file__)), timeout=600)
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "status=2" and len(lines) == 2 and lines[0].startswith("error: disk full"), result.stderr
    summary = json.loads((kept / "summary.json").read_text())
    assert summary["status"] == "failed" and "disk full" in summary["reason"]
    run = read_run(kept)
    assert len(run.history["step"]) > 50 and np.all(np.diff(run.history["step"]) > 0)


LINKED = ("history.csv", "epochs.csv", "summary.json", "experiment.json", "weights.npz", "weights.safetensors",
          "checkpoint.npz")


@pytest.mark.parametrize("name", LINKED)
def test_a_planted_link_is_never_written_through(tmp_path, capsys, name):
    from engine.fileio import WriteError
    from engine.jobs.runs import trainer_events

    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / name).symlink_to(target)
    trainer = Trainer(resolve_experiment(TINY))
    writer = RunWriter(folder, "test", weights_files=WEIGHTS_FORMATS["both"])   # every file a run may write
    writer.attach(trainer)
    with pytest.raises(WriteError, match=f"{name} is a symbolic link"):
        for _ in trainer_events(trainer, RunControl(), writer):
            pass
    assert target.read_text() == "keep me" and (folder / name).is_symlink()
    # the command line: a folder holding anything is refused; --overwrite removes the link, not its target
    shutil.rmtree(folder)
    folder.mkdir()
    (folder / name).symlink_to(target)
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps(TINY))
    capsys.readouterr()
    assert main(["run", str(exp), "--out", str(folder), "--quiet", "--weights-format", "both"]) == 2
    assert "already holds" in capsys.readouterr().err
    assert main(["run", str(exp), "--out", str(folder), "--quiet", "--overwrite", "--weights-format", "both"]) == 0
    assert target.read_text() == "keep me" and not (folder / name).is_symlink() and (folder / name).is_file()


def _strict(text: str):
    def refuse(token):
        raise ValueError(f"{token} in strict JSON")
    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory):
    """A regression run: its accuracy figures are NaN, the case strict JSON must write as null."""
    folder = tmp_path_factory.mktemp("reg") / "run"
    exp = dict(TINY, data={"name": "npz", "path": str(_regression_npz(folder.parent))})
    trainer = Trainer(resolve_experiment(exp))
    writer = RunWriter(folder, "test", weights_files=WEIGHTS_FORMATS["both"])   # both weights files are checked
    writer.attach(trainer)
    for event in trainer.run(RunControl()):
        writer.handle(event)
    return folder


def _regression_npz(folder):
    x = np.random.default_rng(0).normal(size=(100, 2))
    np.savez(folder / "reg.npz", x=x, y=x.sum(axis=1))
    return folder / "reg.npz"


def _metadata_texts(folder, name):
    if name == "summary.json":
        return [(folder / name).read_text()]
    if name == "weights.safetensors":
        from safetensors import safe_open
        with safe_open(str(folder / name), framework="numpy") as f:
            return list(f.metadata().values())
    with np.load(folder / name, allow_pickle=False) as z:
        return [str(z["__metadata__"])]


@pytest.mark.parametrize("name", ["summary.json", "weights.safetensors", "weights.npz", "checkpoint.npz"])
def test_written_json_is_strict(regression_run, name):
    texts = _metadata_texts(regression_run, name)
    assert [_strict(t) for t in texts if t[:1] in "[{"]   # every JSON text parses without NaN literals
    if name != "checkpoint.npz":   # the checkpoint holds no accuracy
        assert any('"final_val_accuracy": null' in t for t in texts)
    assert np.isnan(read_run_info(regression_run).summary["final_val_accuracy"])   # null reads back as NaN


def test_summaries_written_with_nan_still_read(written, tmp_path):
    folder = copy_of(written, tmp_path / "old")
    summary = json.loads((folder / "summary.json").read_text())
    (folder / "summary.json").write_text(json.dumps(dict(summary, test_accuracy=float("nan")), allow_nan=True))
    assert np.isnan(read_run(folder).summary["test_accuracy"])
