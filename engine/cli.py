"""The headless runner: ``python main.py run|presets|export|predict ...``.

Every input problem ends with one line on stderr naming the file, the key and
what is allowed, and exit status 2.  Ctrl-C stops the run at the next step
boundary and still writes its weights; a second Ctrl-C aborts.
"""
from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from pathlib import Path

from engine import __version__
from engine.control import RunControl
from engine.errors import DescentError
from engine.events import Compiling, EpochEnd, RunFinished, RunStarted, StepMetrics

EXIT_INPUT_ERROR = 2


def _fmt(value: float, spec: str = ".4f") -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


class Progress:
    """One status line, rewritten in place: epoch, loss, validation metric, steps/s."""

    def __init__(self, quiet: bool, stream=sys.stderr):
        self.quiet = quiet
        self.stream = stream
        self.total_epochs = self.total_steps = 0
        self.epoch_line = ""
        self._last = 0.0
        self.interactive = stream.isatty()

    def handle(self, event) -> None:
        if self.quiet:
            return
        if isinstance(event, RunStarted):
            self.total_epochs = event.experiment["training"]["epochs"]
            self.total_steps = event.total_steps
            print(f"training {event.experiment['name']}: {len(event.layers)} dense layers, "
                  f"{event.n_params:,} parameters, {event.total_steps:,} steps", file=self.stream)
        elif isinstance(event, Compiling) and not event.done:
            print("compiling kernels (first run after install; cached afterwards)...", file=self.stream)
        elif isinstance(event, StepMetrics):
            now = time.monotonic()
            if self.interactive and now - self._last > 0.1:
                self._last = now
                width = 24
                filled = int(width * event.step / max(1, self.total_steps))
                bar = "#" * filled + "." * (width - filled)
                print(f"\r[{bar}] epoch {event.epoch:6.2f}/{self.total_epochs} loss {_fmt(event.loss)} "
                      f"{self.epoch_line} {event.steps_per_second:,.0f} steps/s   ", end="", file=self.stream)
        elif isinstance(event, EpochEnd):
            metric = (f"val_acc {_fmt(event.val_accuracy)}" if not math.isnan(event.val_accuracy)
                      else f"val_loss {_fmt(event.val_loss)}")
            self.epoch_line = metric
            line = (f"epoch {event.epoch}/{self.total_epochs}  train_loss {_fmt(event.train_loss)}  "
                    f"val_loss {_fmt(event.val_loss)}  val_acc {_fmt(event.val_accuracy)}  "
                    f"{event.wall_time:.2f}s")
            print(("\r" if self.interactive else "") + line + " " * 10, file=self.stream)
        elif isinstance(event, RunFinished):
            s = event.summary
            print(f"{event.status}: {event.reason}; {s['steps']:,} steps, "
                  f"{_fmt(s['steps_per_second'], ',.0f')} steps/s, val_acc {_fmt(s['final_val_accuracy'])}",
                  file=self.stream)


def _run(args) -> int:
    from engine.spec.experiment import load_experiment, with_overrides
    from engine.formats.runstore import RunWriter, default_run_dir
    from engine.training.trainer import Trainer
    from engine.formats.weights import load_weights

    experiment = load_experiment(args.experiment)
    if experiment.get("stages"):
        from engine.jobs.stages import cli_run_stages  # multi-stage workflows (transfer learning, pretraining)

        return cli_run_stages(args, experiment, Progress(args.quiet), RunControl(), __version__)
    if args.seed is not None:
        experiment = with_overrides(experiment, seed=args.seed)
    if args.epochs is not None:
        experiment = with_overrides(experiment, training=dict(experiment["training"], epochs=args.epochs))
    if experiment.get("compare"):
        from engine.jobs.compare import cli_run_comparison  # variants x seeds, in a process pool

        return cli_run_comparison(args, experiment, __version__)
    if args.seeds is not None or args.workers is not None:
        print("error: --seeds and --workers apply to experiments with a compare section", file=sys.stderr)
        return EXIT_INPUT_ERROR
    init = None
    if args.init_weights and args.resume:
        print("error: --init-weights and --resume exclude each other (a resumed run has its own weights)",
              file=sys.stderr)
        return EXIT_INPUT_ERROR
    if args.init_weights:
        init, _ = load_weights(args.init_weights)
    if args.resume:
        from engine.formats.checkpoint import resume_trainer

        trainer = resume_trainer(args.resume, experiment, max_steps=args.steps)
    else:
        trainer = Trainer(experiment, init_weights=init, max_steps=args.steps)
    folder = Path(args.out) if args.out else default_run_dir(experiment["name"])
    writer = RunWriter(folder, __version__)
    writer.attach(trainer, checkpoint=not args.no_checkpoint)
    progress = Progress(args.quiet)
    control = RunControl()

    def on_sigint(signum, frame):
        if control.stopped:
            raise KeyboardInterrupt
        print("\nstopping at the next step (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        for event in trainer.run(control):
            writer.handle(event)
            progress.handle(event)
    finally:
        signal.signal(signal.SIGINT, previous)
        writer.close()
    print(f"run written to {folder}", file=sys.stderr if args.quiet else sys.stdout)
    return 0


def _export(args) -> int:
    from engine.formats import export_run

    start = time.perf_counter()
    path = export_run(args.run_dir, args.format, args.out)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1024:,.1f} KiB, {args.format}) in {time.perf_counter() - start:.2f}s")
    return 0


def _predict(args) -> int:
    from engine.fileio import write_text
    from engine.formats.predict import predict_file

    if args.mc_dropout is not None and args.mc_dropout < 1:
        print(f"error: --mc-dropout must be >= 1, got {args.mc_dropout}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    text = predict_file(args.weights, args.data, mc_samples=args.mc_dropout or 0, raw=args.raw, seed=args.seed)
    if args.out:
        write_text(args.out, text)
        print(f"predictions for {text.count(chr(10)) - 1:,} rows written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _import(args) -> int:
    from engine.formats.importers import cli_import  # foreign models: ONNX, Keras, PyTorch (issue 16)

    return cli_import(args)


def _lr_find(args) -> int:
    from engine.training.lr_finder import cli_lr_find

    if not 0 < args.min_lr < args.max_lr:
        print(f"error: need 0 < --min-lr < --max-lr, got {args.min_lr} and {args.max_lr}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    return cli_lr_find(args)


def _presets(args) -> int:
    from engine.spec.experiment import load_experiment, preset_menu

    for section, entries in preset_menu():  # grouped in the book's order
        for name, path in entries:
            try:
                exp = load_experiment(str(path))
                section = f"[{exp['section']}] " if exp["section"] else ""
                print(f"{name:32s} {section}{exp['title']}")
            except DescentError as exc:
                print(f"{name:32s} INVALID: {exc}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py", description="Descent: train deep networks and watch them.")
    parser.add_argument("--version", action="version", version=f"Descent {__version__}")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="train an experiment without a window")
    run.add_argument("experiment", help="preset name (see 'presets') or path to an experiment JSON file")
    run.add_argument("--epochs", type=int, help="override training.epochs")
    run.add_argument("--steps", type=int, help="stop after this many steps")
    run.add_argument("--seed", type=int, help="override the experiment's seed")
    run.add_argument("--out", help="run folder (default runs/<timestamp>-<name>/)")
    run.add_argument("--init-weights", help="start from these weights (.npz or .safetensors)")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.add_argument("--seeds", help="comparisons: a seed count (5) or list (1,2,3) instead of compare.seeds")
    run.add_argument("--workers", type=int, help="comparisons: processes training at once (default: 2)")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint.npz "
                     "(same experiment; --epochs may extend it); writes a new run folder")
    run.add_argument("--no-checkpoint", action="store_true",
                     help="do not write checkpoint.npz (optimizer state for --resume)")
    run.set_defaults(func=_run)
    export = sub.add_parser("export", help="write a run's final weights in another format")
    export.add_argument("run_dir", help="run folder (or a .safetensors/.npz weights file)")
    export.add_argument("--format", default="safetensors", choices=("safetensors", "npz", "onnx", "keras"),
                        help="file format (default safetensors); keras writes model.weights.h5 and "
                             "model_keras.py (needs h5py)")
    export.add_argument("--out", help="output file (default: weights.<ext>, model.onnx or model.weights.h5 in "
                        "the run folder)")
    export.set_defaults(func=_export)
    predict = sub.add_parser("predict", help="predict with a weights file, no training data needed")
    predict.add_argument("weights", metavar="WEIGHTS_FILE", help=".safetensors or .npz written by Descent")
    predict.add_argument("data", metavar="DATA_FILE", help="CSV or NPZ (array x) of inputs in original units")
    predict.add_argument("--mc-dropout", type=int, metavar="K",
                         help="average K passes with dropout on (Monte Carlo dropout) and report the std")
    predict.add_argument("--seed", type=int, default=0, help="seed of the MC dropout masks")
    predict.add_argument("--raw", action="store_true", help="inputs are already standardized")
    predict.add_argument("--out", help="write the CSV here instead of printing it")
    predict.set_defaults(func=_predict)
    finder = sub.add_parser("lr-find", help="learning-rate finder: exponential sweep, loss vs rate, suggestion")
    finder.add_argument("experiment", help="preset name or path to an experiment JSON file")
    finder.add_argument("--min-lr", type=float, default=1e-6, help="first rate of the sweep (default 1e-6)")
    finder.add_argument("--max-lr", type=float, default=10.0, help="last rate of the sweep (default 10)")
    finder.add_argument("--steps", type=int, help="steps of the sweep (default: one epoch, at least 100)")
    finder.add_argument("--seed", type=int, help="override the experiment's seed")
    finder.add_argument("--out", help="write the sweep as CSV (learning_rate, loss, smoothed)")
    finder.set_defaults(func=_lr_find)
    imp = sub.add_parser("import", help="import an ONNX, Keras or PyTorch network as a run folder")
    imp.add_argument("file", metavar="FILE", help=".onnx, .keras, Keras .h5 or PyTorch state_dict .safetensors")
    imp.add_argument("--out", help="run folder to write (default runs/<timestamp>-imported-<name>/)")
    imp.add_argument("--experiment", help="experiment (preset name or JSON) whose model the file must match; "
                     "gives a PyTorch file its architecture and the folder its data/optimizer/training")
    imp.add_argument("--activations", help="PyTorch: one activation per Linear layer, e.g. bn+relu,relu,softmax")
    imp.set_defaults(func=_import)
    presets = sub.add_parser("presets", help="list the shipped experiments")
    presets.set_defaults(func=_presets)
    return parser


COMMANDS = ("run", "presets", "export", "predict", "lr-find", "import")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_INPUT_ERROR
    for name in ("epochs", "steps", "workers"):
        value = getattr(args, name, None)
        if value is not None and value < 1:
            print(f"error: --{name} must be >= 1, got {value}", file=sys.stderr)
            return EXIT_INPUT_ERROR
    try:
        return args.func(args)
    except DescentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
