"""THE way to run anything: one request, one entry point, events out.

::

    for event in run_job(JobRequest(experiment, out="runs/x"), control):
        ...   # print it (engine.jobs.console), draw it (gui.worker), or ignore it

:func:`run_job` decides, in this one place, what kind of job a request is
(:func:`job_kind`): a learning-rate finder sweep when ``lr_finder`` options
are given, else a *staged* run (a ``stages`` section), a *comparison* (a
``compare`` section), a *sweep* (a ``sweep`` section) or a *single* run; an
experiment key it does not know is an error, never a section silently skipped.  It checks the request's options
against that kind before anything is trained or written
(:func:`plan_job`; a bad combination is an :class:`~engine.errors.ExperimentError`),
then trains and writes the output itself: the run folder
(:class:`~engine.formats.runstore.RunWriter`), the staged folder
(:class:`~engine.jobs.stages.StagesWriter`), the comparison's run folders and
files, the sweep's CSV.  Consumers only read the events, which are immutable
(:mod:`engine.events`):

* every job: ``JobStarted`` first and ``JobFinished`` last;
* single: ``DataPoints`` (2-D data), then the Trainer's ``RunStarted`` ... ``RunFinished``;
* staged: the stage events of :mod:`engine.spec.stages` around each phase's run events;
* compared: a ``ComparisonRecord`` per finished run, then ``ComparisonFinished``
  with the summary; as a *race* (``race=True``: every variant at the first
  seed, one after another in this process, as the window's Train tab shows
  them) each run's ``SubRun``, ``DataPoints`` and run events come before its record;
* sweep: a ``SweepRecord`` per finished run, then ``SweepFinished`` with the summary
  (:mod:`engine.jobs.sweep`: the trials train as a comparison's variants, race included);
* LR finder: ``LRFinderFinished``.

The ``control`` is the job's (:class:`~engine.control.RunControl`): pause,
step and the live learning rate act on a run trained in this process; stop
ends every run at its next step, and the job still writes and reports what
it has.  Comparisons train on an executor (:mod:`engine.jobs.executors`):
``executor="auto"`` takes a local process pool for more than one worker and
this process otherwise; a ``cluster`` takes Ray (:mod:`engine.jobs.ray_executor`),
joined before anything is announced or written.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

from engine import __version__
from engine.control import RunControl
from engine.errors import DescentError, ExperimentError, nearest
from engine.events import JobFinished, JobStarted, LRFinderFinished, frozen_array
from engine.fileio import write_text
from engine.formats.checkpoint import resume_trainer
from engine.formats.models import load_init_weights
from engine.formats.runlayout import DEFAULT_WEIGHTS_FILES, WEIGHTS_FORMATS
from engine.formats.runstore import RunWriter, discard_if_empty, prepare_out_folder
from engine.jobs.compare import comparison_events, comparison_runs
from engine.jobs.executors import EXECUTORS, default_workers
from engine.jobs.ray_executor import LOCAL, check_cluster  # also registers the "ray" executor
from engine.jobs.runs import trainer_events, written
from engine.jobs.stages import StagesWriter, run_stages, with_epochs
from engine.jobs.sweep import sweep_events, sweep_runs
from engine.limits import format_bytes, output_limit, run_output_estimate
from engine.spec.experiment import with_overrides
from engine.spec.sections import REPEATING_KEYS, TOP_KEYS
from engine.training.lr_finder import find_learning_rate
from engine.training.trainer import Trainer

AUTO = "auto"
DEFAULT_CHECKPOINT_MINUTES = 10.0     # a killed single run loses at most about this much training
LIMIT_FROM_ENV = -1     # JobRequest.write_limit: engine.limits.output_limit() (200 MB unless configured)
SECTION_KINDS = {"stages": "staged", "compare": "compared", "sweep": "sweep"}   # a section -> its kind of job


@dataclass(frozen=True)
class JobRequest:
    """Everything a job needs besides its control.  Options that do not apply to the
    experiment's kind of job are refused (see :func:`plan_job`), not ignored."""
    experiment: Mapping               # resolved (engine.spec.experiment.load_experiment / resolve_experiment)
    out: str | Path | None = None     # the run folder (LR finder: the sweep's CSV file); None: write nothing
    seed: int | None = None           # the experiment's seed; a comparison or staged run then trains only it
    seeds: tuple | None = None        # comparisons: these seeds instead of compare.seeds
    epochs: int | None = None         # replaces training.epochs (every phase's, for a staged run)
    max_steps: int | None = None      # stop every run after this many steps
    workers: int | None = None        # comparisons: processes training at once (default: up to 2)
    executor: str = AUTO              # comparisons: a name of engine.jobs.executors.EXECUTORS, or auto
    cluster: str | None = None        # comparisons: train on Ray: local, auto, HOST:PORT or ray://HOST:PORT
    race: bool = False                # comparisons: every variant at the first seed, here, streamed
    resume: str | None = None         # single runs: continue this run folder's checkpoint
    init_weights: str | dict | None = None   # single runs: start from this weights file (or these tensors)
    checkpoint: bool = True           # single runs: write checkpoint.npz (for a later resume)
    checkpoint_minutes: float | None = DEFAULT_CHECKPOINT_MINUTES   # ... and on the way, this often (None: at the end)
    partial: bool = False             # --init-weights: load only the tensors file and network share
    overwrite: bool = False           # out may hold an earlier job's output: delete it first (else refused)
    lr_finder: Mapping | None = None  # run the learning-rate finder with these options instead of training
    run_id: int = 0                   # the run_id of a single run's events
    pictures: bool = True             # single runs: decision surfaces and confusion matrices (a window draws
                                      # them; a run folder keeps neither, so the command line turns them off)
    weights_files: tuple = DEFAULT_WEIGHTS_FILES   # every run folder's copies of its final weights
                                                   # (a value of engine.formats.runlayout.WEIGHTS_FORMATS)
    write_limit: int | None = LIMIT_FROM_ENV   # single runs: refuse to write more bytes than this (None: any)


@dataclass(frozen=True)
class JobPlan:
    """A request checked and resolved: what :func:`run_job` will train."""
    kind: str                         # engine.events.JOB_KINDS
    experiment: dict                  # with the request's seed and epochs applied
    folder: Path | None
    names: tuple = ()                 # variants or stages
    seeds: tuple = ()
    runs: tuple = ()                  # comparisons and sweeps: the RunSpecs
    executor: str = "inprocess"
    workers: int = 1                  # 0: every CPU of the cluster (known once joined)
    cluster: str | None = None
    trials: tuple = ()                # sweeps: the engine.spec.sweep.Trials (names: theirs)

    @property
    def total_runs(self) -> int:
        if self.kind in ("compared", "sweep"):
            return len(self.runs)
        return len(self.names) * len(self.seeds) if self.kind == "staged" else int(self.kind == "single")


def job_kind(request: JobRequest) -> str:
    """The one place that tells a job's kind from the request.  A section of the schema that makes
    a job of many runs (engine.spec.sections.REPEATING_KEYS) and has no kind here, or a key the
    schema does not know, is an error: a new section must be taught here, not trained as its base
    experiment while the section is skipped."""
    unknown = [k for k, v in request.experiment.items() if v is not None and
               (k not in TOP_KEYS or (k in REPEATING_KEYS and k not in SECTION_KINDS))]
    if unknown:
        raise ExperimentError(f"the job runner does not handle the experiment's {', '.join(map(repr, unknown))} "
                              f"section; it runs {', '.join(SECTION_KINDS)} sections and single runs")
    if request.lr_finder is not None:
        return "lr_find"
    sections = [k for k in SECTION_KINDS if request.experiment.get(k)]
    if len(sections) > 1:
        raise ExperimentError(f"an experiment has one of the sections {', '.join(SECTION_KINDS)}, got "
                              f"{' and '.join(sections)}")
    return SECTION_KINDS[sections[0]] if sections else "single"


def _check_options(kind: str, request: JobRequest) -> None:
    if kind in ("single", "staged") and (request.seeds is not None or request.workers is not None):
        raise ExperimentError("--seeds and --workers apply to experiments with a compare or sweep section")
    if kind == "staged":
        for flag in ("init_weights", "resume"):
            if getattr(request, flag):
                raise ExperimentError(f"--{flag.replace('_', '-')} does not apply to a staged experiment (each "
                                      f"stage builds its network from the stages section)")
    elif kind in ("compared", "sweep") and (request.init_weights or request.resume):
        what = ("comparison", "variant") if kind == "compared" else ("sweep", "trial")
        raise ExperimentError(f"--init-weights and --resume do not apply to a {what[0]} (every {what[1]} starts "
                              f"from the weights its seed gives, that is the point)")
    elif kind == "single" and request.init_weights and request.resume:
        raise ExperimentError("--init-weights and --resume exclude each other (a resumed run has its own weights)")
    if tuple(request.weights_files) not in WEIGHTS_FORMATS.values():
        raise ExperimentError(f"weights_files must be one of {', '.join(map(str, WEIGHTS_FORMATS.values()))}, got "
                              f"{request.weights_files!r}")
    if request.partial and not request.init_weights:
        raise ExperimentError("--partial applies to --init-weights (load only the tensors the file and the "
                              "network share)")
    if request.executor != AUTO and request.executor not in EXECUTORS:
        raise ExperimentError(f"executor must be {AUTO} or one of {', '.join(EXECUTORS)}, got "
                              f"{request.executor!r}{nearest(request.executor, EXECUTORS)}")
    if request.cluster is not None:
        if kind not in ("compared", "sweep") or request.race:
            raise ExperimentError("--cluster applies to experiments with a compare or sweep section (their runs "
                                  "train on the cluster)")
        if request.executor not in (AUTO, "ray"):
            raise ExperimentError(f"a cluster trains on the ray executor, not {request.executor!r}")
        check_cluster(request.cluster)


def plan_job(request: JobRequest) -> JobPlan:
    """Check the request against its kind of job and resolve what will run (nothing is written)."""
    kind = job_kind(request)
    _check_options(kind, request)
    exp = request.experiment
    folder = None if request.out is None else Path(request.out)
    if kind == "staged":
        if request.epochs is not None:
            exp = with_epochs(exp, request.epochs)
        seeds = (request.seed,) if request.seed is not None else tuple(exp["stages"]["seeds"])
        return JobPlan(kind, exp, folder, tuple(s["name"] for s in exp["stages"]["list"]), seeds)
    if request.seed is not None:
        exp = with_overrides(exp, seed=request.seed)
    if kind == "lr_find":
        return JobPlan(kind, dict(exp, compare=None, stages=None, sweep=None), folder, seeds=(exp["seed"],))
    if request.epochs is not None:
        exp = with_overrides(exp, training=dict(exp["training"], epochs=request.epochs))
    if kind == "single":
        return JobPlan(kind, exp, folder, (exp["name"],), (exp["seed"],))
    section = exp["sweep" if kind == "sweep" else "compare"]
    seeds = [request.seed] if request.seed is not None else request.seeds
    if request.race and seeds is None:
        seeds = section["seeds"][:1]
    overrides = {"training": {"max_steps": request.max_steps}} if request.max_steps else None
    if kind == "sweep":
        trials, runs = sweep_runs(exp, seeds, overrides)
    else:
        trials, runs = [], comparison_runs(exp, seeds, overrides)
    trials = tuple(trials)
    runs = tuple(dataclasses.replace(r, weights_files=tuple(request.weights_files)) for r in runs)
    workers = max(1, min(request.workers or default_workers(), len(runs)))
    executor = request.executor
    if executor == AUTO:
        executor = "inprocess" if request.race or workers == 1 else "pool"
    if executor == "inprocess":
        workers = 1
    cluster = None
    if request.cluster is not None or executor == "ray":   # Ray: --workers CPUs here, or the cluster's CPUs
        executor, cluster = "ray", request.cluster or LOCAL
        workers = request.workers or ((os.cpu_count() or 1) if cluster == LOCAL else 0)
    names = tuple(t.name for t in trials) or tuple(v["name"] for v in section["variants"])
    return JobPlan(kind, exp, folder, names, tuple(r.seed for r in runs[::len(names)]), runs, executor, workers,
                   cluster, trials)


def run_job(request: JobRequest, control: RunControl | None = None) -> Iterator:
    """Run the job ``request`` describes; yields its events (see the module docstring).
    Input errors are raised (ExperimentError and the other DescentErrors) before anything is
    written."""
    control = control or RunControl()
    plan = plan_job(request)
    if plan.kind != "lr_find":   # its out is a CSV file, replaced atomically
        prepare_out_folder(plan.folder, request.overwrite, request.resume)
    folder = None if plan.folder is None else str(plan.folder)
    with EXECUTORS[plan.executor].session(plan.cluster, plan.workers) as workers:   # joins a cluster, if any
        plan = dataclasses.replace(plan, workers=workers)
        yield JobStarted(plan.kind, plan.experiment["name"], folder, plan.total_runs, plan.names, plan.seeds,
                         plan.workers)
        yield from KINDS[plan.kind](plan, request, control)
        yield JobFinished(plan.kind, folder, control.stopped)


def _single(plan: JobPlan, request: JobRequest, control: RunControl) -> Iterator:
    continue_at = None
    if request.resume:
        trainer = resume_trainer(request.resume, plan.experiment, max_steps=request.max_steps,
                                 run_id=request.run_id)
        _check_steps_left(trainer, request)
        if plan.folder is not None and Path(request.resume).resolve() == plan.folder.resolve():
            continue_at = trainer.step   # its own folder: keep the rows up to the checkpoint
    else:
        trainer = Trainer(plan.experiment, max_steps=request.max_steps, run_id=request.run_id)
        if request.init_weights:
            load_init_weights(trainer.net, request.init_weights, request.partial)
    trainer.pictures = request.pictures
    writer = None
    if plan.folder is not None:
        check_output_size(trainer, request)
        writer = RunWriter(plan.folder, __version__, continue_at, request.weights_files)
        writer.attach(trainer, checkpoint=request.checkpoint, every_minutes=request.checkpoint_minutes)
    yield from trainer_events(trainer, control, writer)


def output_estimate(trainer: Trainer, request: JobRequest):
    """What the run folder of ``request`` trained by ``trainer`` will hold (weights and checkpoint)."""
    return run_output_estimate(trainer.net.n_params, trainer.net.theta.itemsize, len(trainer.opt_state.slots),
                               request.weights_files, request.checkpoint)


class OutputTooLarge(ExperimentError):
    """A run would write more than its limit; said before anything is trained or written."""


def check_output_size(trainer: Trainer, request: JobRequest) -> None:
    limit = output_limit() if request.write_limit == LIMIT_FROM_ENV else request.write_limit
    estimate = output_estimate(trainer, request)
    if limit is None or estimate.total <= limit:
        return
    one = len(request.weights_files) > 1
    raise OutputTooLarge(
        f"this run would write about {format_bytes(estimate.total)} into {request.out} ({estimate.describe()}), "
        f"more than the limit of {format_bytes(limit)}: write less with "
        + ("--weights-format safetensors and " if one else "") + ("--no-checkpoint, or " if request.checkpoint else "")
        + "allow it with --write-limit-mb MB (0: no limit) or the environment variable DESCENT_WEIGHTS_LIMIT_MB")


def _check_steps_left(trainer: Trainer, request: JobRequest) -> None:
    """A resumed run must have steps left to train: a budget (--steps, --epochs) the checkpoint
    already used up is an input error, said before anything is written."""
    if trainer.total_steps > trainer.step:
        return
    done = f"{trainer.step:,} steps ({trainer.step / trainer.steps_per_epoch:.2f} epochs)"
    if request.max_steps is not None and request.max_steps <= trainer.step:
        budget = f"--steps {request.max_steps:,}"
    else:
        budget = f"training.epochs = {trainer.epochs:,} ({trainer.epochs * trainer.steps_per_epoch:,} steps)"
    raise ExperimentError(f"--resume {request.resume}: its checkpoint has already trained {done}, and {budget} "
                          f"leaves nothing to train; give more steps or epochs than that (--steps, --epochs)")


def _staged(plan: JobPlan, request: JobRequest, control: RunControl) -> Iterator:
    writer = None if plan.folder is None else StagesWriter(plan.folder, plan.experiment, __version__,
                                                           tuple(request.weights_files))
    yield from written(run_stages(plan.experiment, control, max_steps=request.max_steps, seeds=list(plan.seeds)),
                       writer)


def _compared(plan: JobPlan, request: JobRequest, control: RunControl) -> Iterator:
    executor = EXECUTORS[plan.executor](control, plan.folder, plan.workers, stream=request.race)
    yield from _leaving_nothing(plan.folder, comparison_events(plan.experiment, plan.runs, plan.folder, executor))


def _sweep(plan: JobPlan, request: JobRequest, control: RunControl) -> Iterator:
    executor = EXECUTORS[plan.executor](control, plan.folder, plan.workers, stream=request.race)
    yield from _leaving_nothing(plan.folder, sweep_events(plan.experiment, plan.trials, plan.runs, plan.folder,
                                                          executor))


def _leaving_nothing(folder: Path | None, events: Iterator) -> Iterator:
    """``events``; an input error one of the job's runs met (its data, its memory) leaves no folder
    behind that holds nothing but the executor's stop file."""
    try:
        yield from events
    except DescentError:
        discard_if_empty(folder)
        raise


def _lr_find(plan: JobPlan, request: JobRequest, control: RunControl) -> Iterator:
    result = find_learning_rate(plan.experiment, **request.lr_finder)
    result = dataclasses.replace(result, lrs=frozen_array(result.lrs), losses=frozen_array(result.losses),
                                 smoothed=frozen_array(result.smoothed))
    if plan.folder is not None:
        write_text(plan.folder, "learning_rate,loss,smoothed\n" + "".join(
            f"{a!r},{b!r},{c!r}\n" for a, b, c in zip(result.lrs.tolist(), result.losses.tolist(),
                                                     result.smoothed.tolist())))
    yield LRFinderFinished(result, None if plan.folder is None else str(plan.folder))


KINDS = {"single": _single, "staged": _staged, "compared": _compared, "sweep": _sweep, "lr_find": _lr_find}
