"""The headless runner: ``python main.py run|presets|export|predict ...``.

Every input problem ends with one line on stderr naming the file, the key and
what is allowed, and exit status 2.  Ctrl-C stops the run at the next step
boundary and still writes its weights; a second Ctrl-C aborts.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from engine import __version__
from engine.errors import DescentError, ExperimentError
from engine.fileio import write_text
from engine.formats import export_format, export_run
from engine.formats.importers import cli_import
from engine.formats.predict import predict_file
from engine.formats.runlayout import DEFAULT_WEIGHTS_FORMAT, WEIGHTS_FORMATS, weights_files_for
from engine.formats.runstore import default_run_dir
from engine.jobs.console import run_in_terminal
from engine.jobs.runner import DEFAULT_CHECKPOINT_MINUTES, LIMIT_FROM_ENV, JobRequest
from engine.spec.seeds import parse_seeds_option, seed_list
from engine.spec.experiment import BUILTIN_NAME, default_experiment, load_experiment, preset_menu
from engine.spec.lr_finder import FINDER_PARAMS

EXIT_INPUT_ERROR = 2
EXIT_INTERRUPTED = 130   # the shell's status for a process ended by Ctrl-C


def _run(args) -> int:
    """Every kind of experiment (single, staged, compared, sweep) goes through the one job runner."""
    experiment = load_experiment(args.experiment)
    if args.write_limit_mb is not None and not (0 <= args.write_limit_mb < math.inf):
        raise ExperimentError(f"--write-limit-mb must be a number of megabytes, 0 or more, got {args.write_limit_mb}")
    weights_format = args.weights_format or DEFAULT_WEIGHTS_FORMAT
    if args.one_weights_file and weights_format != "safetensors":
        raise ExperimentError(f"--one-weights-file (the same as --weights-format safetensors, the default) and "
                              f"--weights-format {weights_format} contradict each other; give one of them")
    weights_files = weights_files_for(weights_format)
    option = parse_seeds_option(args.seeds)
    seeds = None if option is None else tuple(seed_list(option, experiment["seed"]))
    folder = Path(args.out) if args.out else default_run_dir(experiment["name"])
    request = JobRequest(experiment, folder, seed=args.seed, seeds=seeds, epochs=args.epochs, max_steps=args.steps,
                         workers=args.workers, resume=args.resume, init_weights=args.init_weights,
                         checkpoint=not args.no_checkpoint, checkpoint_minutes=args.checkpoint_every,
                         partial=args.partial, overwrite=args.overwrite, cluster=args.cluster,
                         pictures=False,   # nothing here draws them: an epoch's surface cost a tiny net 2x its steps
                         weights_files=weights_files,
                         write_limit=LIMIT_FROM_ENV if args.write_limit_mb is None else
                         (None if args.write_limit_mb == 0 else int(args.write_limit_mb * 1e6)))
    return run_in_terminal(request, quiet=args.quiet)


def _export(args) -> int:
    start = time.perf_counter()
    fmt = export_format(args.format, args.out)
    path = export_run(args.run_dir, fmt, args.out)
    size = path.stat().st_size
    print(f"wrote {path} ({size / 1024:,.1f} KiB, {fmt}) in {time.perf_counter() - start:.2f}s")
    return 0


def _predict(args) -> int:
    if args.mc_dropout is not None and args.mc_dropout < 1:
        print(f"error: --mc-dropout must be >= 1, got {args.mc_dropout}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    text = predict_file(args.weights, args.data, mc_samples=args.mc_dropout or 0, raw=args.raw, seed=args.seed,
                        warn=lambda message: print(f"warning: {message}", file=sys.stderr))
    if args.out:
        write_text(args.out, text)
        print(f"predictions for {text.count(chr(10)) - 1:,} rows written to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _import(args) -> int:
    return cli_import(args)


def _lr_find(args) -> int:
    # the schema's bounds (engine.spec.lr_finder), as for a variant's lr_finder key: finite rates,
    # at least 10 steps
    for key in ("min_lr", "max_lr", "steps"):
        try:
            FINDER_PARAMS[key].check(getattr(args, key), f"--{key.replace('_', '-')}")
        except ExperimentError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return EXIT_INPUT_ERROR
    if not 0 < args.min_lr < args.max_lr:
        print(f"error: need 0 < --min-lr < --max-lr, got {args.min_lr} and {args.max_lr}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    finder = {"min_lr": args.min_lr, "max_lr": args.max_lr, "steps": args.steps}
    return run_in_terminal(JobRequest(load_experiment(args.experiment), args.out, seed=args.seed, lr_finder=finder))


def _presets(args) -> int:
    builtin = default_experiment()   # the window's first experiment, so it can be named and run too
    print(f"{BUILTIN_NAME:32s} [Built in] {builtin['title']} (the window opens on it)")
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
    run.add_argument("--seeds", help="comparisons and sweeps: a seed count (5) or list (1,2,3) instead of "
                     "compare.seeds or sweep.seeds")
    run.add_argument("--workers", type=int, help="comparisons and sweeps: processes training at once (default: 2)")
    run.add_argument("--cluster", metavar="WHERE",
                     help="comparisons and sweeps: train the runs on Ray: local (start Ray here with --workers CPUs, default "
                          "every core), auto (the cluster 'ray start' runs on this machine), HOST:PORT or "
                          "ray://HOST:PORT (join a cluster); needs requirements-cluster.txt")
    run.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from its checkpoint.npz "
                     "(same experiment; --epochs may extend it); writes a new run folder")
    run.add_argument("--no-checkpoint", action="store_true",
                     help="do not write checkpoint.npz (optimizer state for --resume)")
    run.add_argument("--checkpoint-every", type=float, metavar="MINUTES", default=DEFAULT_CHECKPOINT_MINUTES,
                     help="also write checkpoint.npz this often while training, so a killed run can resume "
                          f"from it (default {DEFAULT_CHECKPOINT_MINUTES:g}; the weights are the same either way)")
    run.add_argument("--weights-format", metavar="FORMAT",
                     help=f"the final weights' file(s) in each run folder: {', '.join(WEIGHTS_FORMATS)} (default "
                          f"{DEFAULT_WEIGHTS_FORMAT}: weights.safetensors, which PyTorch and Hugging Face tools read; "
                          f"npz: weights.npz; both)")
    run.add_argument("--one-weights-file", action="store_true",
                     help="the same as --weights-format safetensors, the default (kept for older scripts)")
    run.add_argument("--write-limit-mb", type=float, metavar="MB",
                     help="a single run that would write more weights and checkpoint than this is refused "
                          "before training (default 200, or DESCENT_WEIGHTS_LIMIT_MB; 0: no limit)")
    run.add_argument("--partial", action="store_true",
                     help="with --init-weights: load only the tensors the file and the network share (by "
                          "default every tensor must match)")
    run.add_argument("--overwrite", action="store_true",
                     help="--out may hold an earlier run: delete what Descent wrote there first (without it, "
                          "a folder that is not empty is refused; --resume into its own folder continues it)")
    run.set_defaults(func=_run)
    export = sub.add_parser("export", help="write a run's final weights in another format")
    export.add_argument("run_dir", help="run folder (or a .safetensors/.npz weights file)")
    export.add_argument("--format", choices=("safetensors", "npz", "onnx", "keras"),
                        help="file format (default: the one --out's suffix names, else safetensors); keras "
                             "writes model.weights.h5 and model_keras.py (needs h5py). The ONNX graph and the "
                             "Keras script standardize their inputs but do not scale them: give them inputs as "
                             "the data loader scaled them (Fashion-MNIST pixels / 255), where predict takes raw "
                             "0-255 pixels")
    export.add_argument("--out", help="output file (default: weights.<ext>, model.onnx or model.weights.h5 in "
                        "the run folder)")
    export.set_defaults(func=_export)
    predict = sub.add_parser("predict", help="predict with a weights file, no training data needed")
    predict.add_argument("weights", metavar="WEIGHTS_FILE", help=".safetensors or .npz written by Descent")
    predict.add_argument("data", metavar="DATA_FILE", help="CSV or NPZ (array x) of inputs in original units "
                                                           "(raw 0-255 pixels for images): the weights file's "
                                                           "scaling and standardization are applied")
    predict.add_argument("--mc-dropout", type=int, metavar="K",
                         help="average K passes with dropout on (Monte Carlo dropout) and report the std")
    predict.add_argument("--seed", type=int, default=0, help="seed of the MC dropout masks")
    predict.add_argument("--raw", action="store_true", help="inputs are already scaled and standardized "
                                                              "(as the network sees them)")
    predict.add_argument("--out", help="write the CSV here instead of printing it")
    predict.set_defaults(func=_predict)
    finder = sub.add_parser("lr-find", help="learning-rate finder: exponential sweep, loss vs rate, turning "
                                            "point and suggestion (turning point / 10)")
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
    minutes = getattr(args, "checkpoint_every", None)
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        print(f"error: --checkpoint-every must be a positive number of minutes, got {minutes}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    try:
        return args.func(args)
    except DescentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:   # a second Ctrl-C, or one while loading (before the run could stop cleanly)
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
