"""Descent's main window: editors on the left, live plots on the right.

Threading: the worker thread (:mod:`gui.worker`) trains; batches of events
arrive through a queued signal and are appended to the run's
:class:`RunRecord`; a 30 Hz timer redraws whatever changed.  Commands go to
the run through its ``RunControl``.  Batches of jobs the window no longer
tracks are dropped.

A job is one press of Train.  It usually makes one run (one record); a
staged experiment (transfer learning, pretraining: a ``stages`` section)
makes one record per stage, so each stage appears in the run list.

The coach's findings (found on the training thread) reach the records with
the other events; "Try it" on a finding loads the modified experiment into
the editors and trains it as a new run overlaid on the original, after
stopping the run in progress if there is one.
"""
from __future__ import annotations

import copy
import html
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFrame, QLabel, QMainWindow, QSplitter, QTabWidget, QToolBar

from engine.coach import Coach, Finding
from engine.spec.overrides import apply_overrides
from engine.control import RunControl
from engine.errors import DescentError
from engine.events import JobStarted, RunFailed, RunFinished, StepMetrics, SubRun, WritingFiles
from engine.jobs.runner import JobRequest
from engine.spec.experiment import BUILTIN_NAME, default_experiment, resolve_experiment
from engine.params import Param
from engine.formats.runstore import default_run_dir

from . import menus
from .compat import collect_garbage_on_gui_thread
from .actions import FileActions
from .builder import ModelBuilder
from .compare import ComparisonView
from .dashboard import Dashboard
from .frames import FramePacer
from .importing import initial_weights
from .panels import DataPanel, OptimizerPanel, TrainingPanel
from .records import RunRecord, load_folder_curves
from . import output_prompt
from .runs import RunList
from .speed import SpeedControl
from .widgets.params import NumberEditor
from .window_parts import (ActiveRun, Explanation, PageTabs, RemembersLayout, coach_comparison, scrolling,
                           variant_changes)
from .worker import WorkerJob, WorkerThread

REDRAW_MS = 33
STATUS_SECONDS = 0.2    # status bar and run list refresh interval while training
FRAME_MIN_RECORDS = 3   # see MainWindow._draw_if_due
FRAME_MAX_SECONDS = 0.25
META_KEYS = ("name", "title", "description", "section", "look_at", "loss")
PASS_THROUGH = ("stages", "compare", "sweep")   # sections the editors do not show but a run must keep
try:
    from engine.spec.stages import StageFinished, StagesFinished, StageStarted
except ImportError:  # pragma: no cover
    StageStarted = StageFinished = StagesFinished = ()
LIVE_LR = Param(0.01, "Learning rate. Changed while training, it takes effect at the next step (and replaces "
                      "the schedule for the rest of the run); when idle it sets the optimizer's learning rate.",
                low=0.0, low_open=True, log=True)


class MainWindow(RemembersLayout, FileActions, QMainWindow):
    def __init__(self, experiment: dict | None = None, run_root: str | Path | None = "runs",
                 settings: QSettings | None = None, load_previous_runs: bool = True):
        super().__init__()
        collect_garbage_on_gui_thread()   # worker threads must never destroy Qt objects
        self._status_at = 0.0    # last status-bar update (monotonic s)
        # when frames may be drawn (gui/frames.py); through this module's time, which tests replace
        self.frames = FramePacer(clock=lambda: time.monotonic())
        self._fresh_records, self._urgent = 0, False   # what arrived since the last frame
        self.settings = settings if settings is not None else QSettings("Descent", "Descent")
        self.run_root = None if run_root is None else Path(run_root)
        self.records: dict[int, RunRecord] = {}
        self.jobs: dict[int, ActiveRun] = {}      # submitted jobs not yet done, by job id
        self.active: ActiveRun | None = None      # the job the controls act on
        self.meta: dict = {}
        self._next_run_id = 1
        self._loading = False
        self._closing = False
        self._coach_next: RunRecord | None = None   # the original run of a coach variant waiting to start
        self.control_factory = RunControl   # benchmarks substitute an instrumented RunControl
        self.worker = WorkerThread(self)
        self.worker.worker.batch.connect(self.on_batch)
        self.worker.worker.done.connect(self.on_job_done)

        self._build_editors()
        self.dashboard = Dashboard()
        self.dashboard.coach.try_requested.connect(self.try_finding)
        self.runs = RunList()
        self.runs.checked_changed.connect(self._view_changed)
        self.runs.focus_changed.connect(self._view_changed)
        self.runs.load_requested.connect(self.load_record_into_editors)
        self._build_layout()
        self._build_toolbar()
        self._build_statusbar()
        menus.build_menus(self)

        if experiment is None:
            self.set_experiment(resolve_experiment(default_experiment()),
                                source=f"built in: {BUILTIN_NAME} (python main.py run {BUILTIN_NAME}; the Presets menu "
                                       "has the book's experiments)")
        else:
            self.set_experiment(experiment)
        if load_previous_runs and self.run_root is not None:
            self.runs.load_folders(self.run_root, first_id=-100_000)  # earlier runs: negative ids, listed first
            for record in self.runs.records.values():
                self.records[record.run_id] = record
        self.timer = QTimer(self)
        self.timer.setInterval(REDRAW_MS)
        self.timer.timeout.connect(self._tick)
        self.timer.start()
        self.update_controls()
        self.restore_layout()

    # ================================================================= construction

    def _build_editors(self) -> None:
        self.data_panel = DataPanel()
        self.builder = ModelBuilder()
        self.optimizer_panel = OptimizerPanel()
        self.training_panel = TrainingPanel()
        self.data_panel.data_loaded.connect(self._data_loaded)
        self.training_panel.changed.connect(self._training_changed)
        self.optimizer_panel.learning_rate_changed.connect(self._panel_lr_changed)
        for panel in (self.data_panel, self.builder, self.optimizer_panel, self.training_panel):
            panel.changed.connect(self._edited)
        # the whole explanation, scrollable, in a splitter pane the student can enlarge (no tooltip-only text)
        self.header = Explanation()
        self.header.setOpenExternalLinks(False)
        self.header.setFrameShape(QFrame.NoFrame)
        self.header.setStyleSheet("QTextBrowser { background: #eef3fb; border: 1px solid #c9d6ea; padding: 2px; }")
        self.header.setMinimumHeight(48)

    def _build_layout(self) -> None:
        self.config_tabs = QTabWidget()
        for panel, name in ((self.builder, "Model"), (self.data_panel, "Data"), (self.optimizer_panel, "Optimizer"),
                            (self.training_panel, "Training")):
            self.config_tabs.addTab(scrolling(panel), name)   # every editor reachable on a 720-pixel screen
        self.left_split = QSplitter(Qt.Vertical)
        self.left_split.setObjectName("left_split")
        self.left_split.addWidget(self.header)
        self.left_split.addWidget(self.config_tabs)
        self.left_split.addWidget(self.runs)
        self.left_split.setStretchFactor(0, 1)
        self.left_split.setStretchFactor(1, 4)
        self.left_split.setStretchFactor(2, 1)
        self.left_split.setSizes([150, 500, 170])
        self.runs.setMinimumHeight(90)
        self.config_tabs.setMinimumHeight(150)
        self.train_split = QSplitter(Qt.Horizontal)
        self.train_split.setObjectName("train_split")
        self.train_split.addWidget(self.left_split)
        self.dashboard_area = scrolling(self.dashboard)   # below its readable size the plot grid scrolls
        self.train_split.addWidget(self.dashboard_area)
        self.train_split.setStretchFactor(0, 0)
        self.train_split.setStretchFactor(1, 1)
        self.train_split.setCollapsible(1, False)   # the editors may be dragged shut; the plots may not
        self.train_split.setSizes([400, 1200])
        self.tabs = PageTabs()
        self.tabs.setDocumentMode(True)
        self.tabs.addTab(self.train_split, "Train")
        self.comparison = ComparisonView(self.compare_experiment, self.run_root)
        self.tabs.addTab(scrolling(self.comparison), "Compare")   # its controls need ~1220 px: below, scroll
        self.tabs.currentChanged.connect(self._tab_changed)
        self.arena = None
        try:
            from .arena import ArenaTab  # issue 5: lands independently
        except ImportError:
            ArenaTab = None
        except Exception as exc:  # a broken arena must not take the window down
            print(f"descent: the arena tab could not be loaded: {type(exc).__name__}: {exc}")
            ArenaTab = None
        if ArenaTab is not None:
            self.arena = ArenaTab()
            self.tabs.addTab(scrolling(self.arena), "Optimizer arena")
        self.setCentralWidget(self.tabs)

    def splitters(self) -> dict:
        """The splitters whose positions are remembered between launches, by settings key."""
        return {"train_split": self.train_split, "left_split": self.left_split,
                "notes_split": self.dashboard.notes_split}

    def _tab_changed(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is self.comparison:
            self.comparison.show_plan()
        # the arena has its own Step/Run: the training toolbar (and Space) would act on an unseen run
        arena = widget is self.arena and self.arena is not None
        self.toolbar.setVisible(not arena)
        self.space_action.setEnabled(not arena)

    def _build_toolbar(self) -> None:
        bar = self.toolbar = QToolBar("Training")
        bar.setObjectName("training_toolbar")
        bar.setMovable(False)
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        self.addToolBar(bar)

        def action(text, tip, keys, slot):
            a = QAction(text, self)
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.WindowShortcut)
            names = " or ".join(QKeySequence(k).toString(QKeySequence.NativeText) for k in keys)
            a.setToolTip(f"{tip} ({names})")
            a.triggered.connect(slot)
            bar.addAction(a)
            return a

        self.train_action = action("Train", "Start training (Space also pauses and resumes)", ["Ctrl+Return"],
                                   self.train_or_pause)
        self.space_action = QAction("Train / Pause / Resume", self)
        self.space_action.setShortcut(QKeySequence("Space"))
        self.space_action.setShortcutContext(Qt.WindowShortcut)
        self.space_action.triggered.connect(self.train_or_pause)
        self.addAction(self.space_action)
        self.pause_action = action("Pause", "Pause or resume the run at the next step", ["P"], self.pause_resume)
        self.step_action = action("Step", "Run one optimizer step, then pause", ["S"], self.step_once)
        self.step_epoch_action = action("Step epoch", "Run to the end of the epoch, then pause", ["Shift+S"],
                                        self.step_epoch)
        self.stop_action = action("Stop", "Stop the run (it keeps its results)", ["Esc"], self.stop)
        self.reset_action = action("Reset", "Stop and start over from freshly initialized weights (same seed)",
                                   ["Ctrl+R"], self.reset)
        bar.addSeparator()
        lr_label = QLabel(" learning rate ")
        lr_label.setToolTip(LIVE_LR.doc)
        bar.addWidget(lr_label)
        self.lr_editor = NumberEditor(LIVE_LR, "learning rate")
        self.lr_editor.setMaximumWidth(120)
        self.lr_editor.changed.connect(self._live_lr_changed)
        bar.addWidget(self.lr_editor)
        bar.addSeparator()
        self.speed = SpeedControl(self.settings, lambda: self.active.control if self.active is not None else None)
        bar.addWidget(self.speed)

    def _build_statusbar(self) -> None:
        bar = self.statusBar()
        self.state_label = QLabel("ready")
        self.progress_label = QLabel()
        self.rate_label = QLabel()
        self.elapsed_label = QLabel()
        for w in (self.state_label, self.progress_label, self.rate_label, self.elapsed_label):
            w.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(w)

    # =================================================================== experiment

    def set_experiment(self, experiment: dict, source: str = "") -> None:
        """Show a (resolved) experiment in every editor."""
        exp = resolve_experiment(copy.deepcopy(experiment))
        self._loading = True
        try:
            self.meta = {k: exp[k] for k in META_KEYS}
            self.meta.update({k: copy.deepcopy(exp[k]) for k in PASS_THROUGH if exp.get(k)})
            self.training_panel.set_config(exp["training"], exp["seed"])
            self.data_panel.seed = exp["seed"]
            self.data_panel.set_config(exp["data"])
            self.builder.set_model(exp["model"])
            self.optimizer_panel.set_config(exp["optimizer"], exp["schedule"])
        finally:
            self._loading = False
        self._training_changed()
        self._show_header(source)
        if self.tabs.currentWidget() is self.comparison:   # the tab on screen says what it would now run
            self.comparison.show_plan()

    def current_experiment(self) -> dict:
        """The editors' experiment, resolved (raises DescentError when invalid)."""
        problem = self.optimizer_panel.schedule_problem()
        if problem:
            raise DescentError(problem)
        optimizer, schedule = self.optimizer_panel.config()
        training, seed = self.training_panel.config()
        exp = {**{k: v for k, v in self.meta.items() if k != "loss"}, "seed": seed,
               "data": self.data_panel.config(), "model": self.builder.model(), "loss": self.meta.get("loss", "auto"),
               "optimizer": optimizer, "schedule": schedule, "training": training}
        return resolve_experiment(exp)

    def compare_experiment(self) -> dict:
        """What the Compare tab compares: the editors' experiment; after the coach's "Try it", the
        suggestion against the run as it was (the editors hold one run, which declares no variants)."""
        exp = self.current_experiment()
        pending = getattr(self, "_coach_compare", None)
        if exp.get("compare") or exp.get("sweep") or pending is None or pending[0] != exp["name"]:
            return exp
        try:
            return resolve_experiment(dict(exp, compare=pending[1]))
        except DescentError:
            return exp

    def _show_header(self, source: str = "") -> None:
        m = self.meta
        title = html.escape(m.get("title") or m.get("name", ""))
        section = f"<span style='color:#555'>{html.escape(m['section'])}</span><br>" if m.get("section") else ""
        text = f"{section}<b style='font-size:11pt'>{title}</b>"
        if m.get("description"):
            text += f"<br>{html.escape(m['description'])}"
        if m.get("look_at"):
            text += f"<br><i>Look at:</i> {html.escape(m['look_at'])}"
        if source:
            text += f"<br><span style='color:#777'>{html.escape(source)}</span>"
        self.header.setHtml(text)
        self._fit_header()
        self.setWindowTitle(f"Descent — {m.get('title') or m.get('name', '')}")

    def _fit_header(self) -> None:
        """Give the explanation the height it needs, up to 45% of the left column (it scrolls
        beyond): a short text leaves the editors their room, a long one is read whole."""
        sizes = self.left_split.sizes()
        total = sum(sizes)
        if total <= 0 or self.header.viewport().width() <= 0:
            return
        doc = self.header.document()
        doc.setTextWidth(self.header.viewport().width())
        wanted = int(doc.size().height()) + 2 * self.header.frameWidth() + 8
        header = max(self.header.minimumHeight(), min(wanted, int(0.45 * total)))
        rest = total - header
        self.left_split.setSizes([header, max(0, rest - sizes[2]), sizes[2]] if rest > sizes[2] + 150
                                 else [header, int(rest * 0.6), rest - int(rest * 0.6)])

    def _edited(self) -> None:
        if not self._loading:
            self.update_controls()

    def _data_loaded(self, info) -> None:
        self.builder.set_data_info(info)
        self._training_changed()

    def _training_changed(self) -> None:
        training, seed = self.training_panel.config()
        self.data_panel.set_seed(seed)
        info = self.data_panel.info
        self.optimizer_panel.set_plan(info.n_train if info else 1000, training["batch_size"], training["epochs"],
                                      training.get("max_steps"))

    def _panel_lr_changed(self, value: float) -> None:
        if self.lr_editor.value() != value and self.active is None:
            self.lr_editor.set_value(value)

    def _live_lr_changed(self) -> None:
        value = self.lr_editor.value()
        if value is None:
            return
        if self.active is not None:
            self.active.control.set_learning_rate(value)
            self.active.record.lr_changes.append((self.active.record.step, value))
            self.statusBar().showMessage(f"learning rate {value:g} from the next step on", 5000)
        else:
            self.optimizer_panel.set_learning_rate(value)

    # ======================================================================= runs

    def start_run(self, paused: bool = False, steps: int = 0, epoch: bool = False,
                  name: str = "", changes: str = "") -> RunRecord | None:
        if self.active is not None:
            return None
        try:
            exp = self.current_experiment()
        except DescentError as exc:
            self.show_error("This experiment cannot run", str(exc))
            return None
        output = output_prompt.ask(self, exp, sum(self.builder.counts or ()))   # a huge run folder: ask first
        if output is None:
            return None
        run_id = self._next_run_id
        self._next_run_id += 1
        folder = default_run_dir(exp["name"], self.run_root) if self.run_root is not None and output.write else None
        control = self.control_factory(paused=paused)
        control.set_pace(self.speed.pace())
        if steps:
            control.step(steps)
        if epoch:
            control.step_epoch()
        record = RunRecord(run_id, exp, name=f"#{run_id} {name or exp.get('title') or exp['name']}", folder=folder)
        record.changes = changes
        self.records[run_id] = record
        self.runs.add(record, checked=True, auto=True)
        self.active = ActiveRun(run_id, record, control, [record])
        self.jobs[run_id] = self.active
        live_lr = self.lr_editor.value()
        if live_lr is not None and live_lr != exp["optimizer"]["learning_rate"]:
            self.lr_editor.set_value(exp["optimizer"]["learning_rate"])
        # a comparison trains as a race here: its variants at the first seed, one after another, overlaid
        request = JobRequest(exp, folder, race=True, run_id=run_id, init_weights=initial_weights(self, exp),
                             weights_files=output.weights_files, checkpoint=output.checkpoint,
                             write_limit=output.write_limit)
        self.worker.submit(WorkerJob(run_id, request, control, watchers=(Coach(),)))
        self.update_controls()
        return record

    def train_or_pause(self) -> None:
        if self.active is None:
            self.start_run()
        elif self.active.control.paused:
            self.active.control.resume()
        else:
            self.active.control.pause()
        self.update_controls()

    def pause_resume(self) -> None:
        if self.active is None:
            return
        if self.active.control.paused:
            self.active.control.resume()
        else:
            self.active.control.pause()
        self.update_controls()

    def step_once(self) -> None:
        if self.active is None:
            self.start_run(paused=True, steps=1)
        else:
            self.active.control.step(1)
        self.update_controls()

    def step_epoch(self) -> None:
        if self.active is None:
            self.start_run(paused=True, epoch=True)
        else:
            self.active.control.step_epoch()
        self.update_controls()

    def stop(self) -> None:
        if self.active is not None:
            self.active.control.stop()
            self.update_controls()

    def reset(self) -> None:
        """Stop the run and forget it in the view: the next Train starts from fresh weights."""
        if self.active is not None:
            self.active.control.stop()
            for record in self.active.records:
                self.runs.set_checked(record.run_id, False, by_user=False)
            self.active = None
        self.statusBar().showMessage("Reset: the next Train or Step starts from freshly initialized weights "
                                     f"(seed {self.training_panel.config()[1]}).", 8000)
        self.update_controls()
        self.redraw()

    def on_batch(self, job_id: int, events) -> None:
        job = self.jobs.get(job_id)
        if job is None:
            return  # a job the window no longer tracks
        chunk: list = []
        for event in events:
            if isinstance(event, JobStarted) and event.kind in ("compared", "sweep"):
                what = "variants" if event.kind == "compared" else "trials"
                self.statusBar().showMessage(f"Training its {len(event.variants)} {what} one after another "
                                             "(first seed), overlaid in every plot; every seed with mean, spread "
                                             "and verdicts: the Compare tab", 15000)
            elif isinstance(event, (StageStarted, SubRun)):
                job.record.ingest(chunk)
                chunk = []
                title = event.title if isinstance(event, SubRun) else f"{event.stage} (seed {event.seed})"
                self._sub_record(job, title)
            elif isinstance(event, (WritingFiles, RunFinished)):   # a run's files being written; then written
                job.writing = event if isinstance(event, WritingFiles) else None
                chunk.append(event)
            elif isinstance(event, StagesFinished):
                self.statusBar().showMessage(f"all stages done; report in {job.records[0].folder}", 15000)
            elif not isinstance(event, StageFinished):
                chunk.append(event)
        job.record.ingest(chunk)
        record = job.record
        last = next((e for e in reversed(events) if not isinstance(e, Finding)), None)   # a finding may follow
        if isinstance(last, (RunFinished, RunFailed)):
            if record.status == "diverged":
                self.statusBar().showMessage(f"{record.name} diverged at step {record.diverged_step}: lower the "
                                             "learning rate, add gradient clipping or batch normalization.", 15000)
            elif record.status == "failed":
                self.statusBar().showMessage(f"{record.name} failed: {record.reason}", 15000)
        fresh = sum(isinstance(e, StepMetrics) for e in events)
        self._fresh_records += fresh
        self._urgent = self._urgent or fresh < len(events)   # epoch ends, findings, start and end
        self._draw_if_due()

    def _tick(self) -> None:
        """The timer draws what batches left undrawn, and keeps an idle or paused window current."""
        self._draw_if_due()

    def _draw_if_due(self) -> None:
        """Draw at most every ``frames.interval`` (REDRAW_MS; longer while frames take more than
        their share of the GUI thread, see gui/frames.py), and only when the frame shows something
        new enough: at least FRAME_MIN_RECORDS new diagnostics records, another kind of event, or
        FRAME_MAX_SECONDS since the last frame.  A large network logs ~16 records a second, one
        per batch; drawing a frame for each single point took a fifth of a core of Python, which
        the training thread paid for (one GIL, one shared second core): ~5 frames a second keep its
        curves live and its training at 92% of the headless speed.  A tiny network logs hundreds
        of records a second: its frames come as often as their cost allows."""
        age = self.frames.age()
        if age < 0.9 * self.frames.interval:
            return
        if self._urgent or self._fresh_records >= FRAME_MIN_RECORDS or age >= FRAME_MAX_SECONDS:
            self.redraw(force=False)

    def _sub_record(self, job: ActiveRun, title: str) -> None:
        """The next stage or variant of a job: a record of its own in the run list."""
        job.stage_count += 1
        base = job.records[0]
        tag = title.split(" (seed")[0]
        changes = variant_changes(base.experiment, tag)
        if job.stage_count == 1:
            base.name, base.tag, base.changes = f"#{base.run_id} {title}", tag, changes
            return
        run_id = self._next_run_id
        self._next_run_id += 1
        record = RunRecord(run_id, base.experiment, name=f"#{run_id} {title}", folder=base.folder)
        record.tag, record.changes = tag, changes
        self.records[run_id] = record
        self.runs.add(record, checked=True, auto=False)
        job.records.append(record)
        job.record = record

    def on_job_done(self, job_id: int) -> None:
        job = self.jobs.pop(job_id, None)
        if job is None:
            return
        for record in job.records:
            if record.wall_seconds and record.step:
                record.rate = record.step / record.wall_seconds if len(job.records) == 1 else record.rate
            if not record.finished:   # a stage that never ran (stopped before it)
                record.status = "stopped" if job.control.stopped else "finished"
                record.version += 1
        if self.active is job:
            self.active = None
            self.update_controls()
        if self._coach_next is not None and self.active is None:
            original, self._coach_next = self._coach_next, None
            self._start_coach_variant(original)

    def try_finding(self, record: RunRecord, finding: Finding) -> None:
        """The coach's "try it": load the modified experiment and train it next to ``record``."""
        if record.stage:
            return   # a stage starts from another stage's weights: it cannot be trained alone
        try:
            exp = apply_overrides(record.experiment, finding.try_it)
        except DescentError as exc:
            self.show_error("The coach's suggestion cannot be applied", str(exc))
            return
        suffix = f"-coach-{finding.detector}"
        if not exp["name"].endswith(suffix):
            exp["name"] += suffix   # the run folder's name; the run list shows the label instead
        self._coach_label = finding.try_it_label
        # the Compare tab offers the honest test of the suggestion: it against the run as it was, over seeds
        self._coach_compare = (exp["name"], coach_comparison(record.experiment, exp, finding.try_it))
        self.set_experiment(exp, source=f"coach: {finding.try_it_label} (from run {record.name})")
        if self.active is not None:   # one job at a time: the variant starts when this one is done
            self._coach_next = record
            self.active.control.stop()
            self.statusBar().showMessage(f"Stopping {self.active.record.name}; then training the coach's "
                                         f"variant: {finding.try_it_label}", 10000)
            self.update_controls()
            return
        self._start_coach_variant(record)

    def _start_coach_variant(self, original: RunRecord) -> None:
        """Train the editors' experiment (the coach's variant), overlaid on ``original``."""
        label = getattr(self, "_coach_label", "")
        new = self.start_run(name=f"coach: {label}" if label else "", changes=f"from {original.name}: {label}")
        if new is None:
            return
        if original.run_id in self.runs.items:
            self.runs.set_checked(original.run_id, True)
        self.statusBar().showMessage(f"Training the coach's variant {new.name} next to {original.name}", 10000)

    def load_record_into_editors(self, record: RunRecord | None) -> None:
        if record is None:
            return
        try:
            self.set_experiment(record.experiment, source=f"loaded from run {record.name}")
        except DescentError as exc:
            self.show_error("Cannot load this run's experiment", str(exc))
            return
        self.statusBar().showMessage(f"Loaded the experiment of {record.name} into the editors", 5000)

    # ===================================================================== view

    def shown_records(self) -> list[RunRecord]:
        records = self.runs.checked_records()
        for r in records:
            if not r.loaded:
                load_folder_curves(r)
        return records

    def focus_record(self, shown: list[RunRecord]) -> RunRecord | None:
        current = self.runs.current_record()
        if current is not None and current in shown:
            return current
        if self.active is not None and self.active.record in shown:
            return self.active.record
        return shown[-1] if shown else None

    def _view_changed(self) -> None:
        self.redraw()

    def redraw(self, force: bool = True) -> None:
        """Bring every view up to date; the timer's ticks (force=False) let slow views skip a tick."""
        self.frames.frame()
        self._fresh_records, self._urgent = 0, False
        shown = self.shown_records()
        self.dashboard.refresh(shown, self.focus_record(shown), force)
        if force or time.monotonic() - self._status_at >= STATUS_SECONDS:
            self._status_at = time.monotonic()   # numbers for people: a few updates a second
            for record in self.records.values():
                self.runs.update_record(record)
            self._update_status()

    def _update_status(self) -> None:
        record = self.active.record if self.active is not None else None
        if record is None:
            shown = self.runs.checked_records()
            focus = self.focus_record(shown)
            self._set_label(self.state_label, "ready" if focus is None else f"idle · shown: {focus.name} "
                                                                            f"({focus.status.replace('_', ' ')})")
            if focus is None:
                for label in (self.progress_label, self.rate_label, self.elapsed_label):
                    self._set_label(label, "")
            else:
                self._show_progress(focus, None)
            return
        control = self.active.control
        if record.compiling:
            state = "Compiling kernels… (once per session; can take a minute after an install)"
        elif record.status == "starting":
            state = "loading data…"
        elif self.active.writing is not None:
            state = output_prompt.writing_state(self.active.writing)
        elif control.stopped:
            state = f"stopped at step {max(record.step, control.steps_run):,}; finishing (evaluation, saving)…"
        elif control.paused:
            state = "paused"
        else:
            state = "training"
        self._set_label(self.state_label, state)
        if self.active.stage_count == 0:   # a single run: its steps before the first diagnostics record (a huge net)
            record.steps_run = control.steps_run
        self._show_progress(record, self.active.tick())

    def _show_progress(self, record: RunRecord, wall: float | None) -> None:
        epochs = record.experiment.get("training", {}).get("epochs", "?")
        if record.phases and record.total_steps and record.steps_per_epoch:   # a stage: its phases' epochs
            epochs = f"{record.total_steps / record.steps_per_epoch:g}"
        total = f"/{record.total_steps:,}" if record.total_steps else ""
        step = max(record.step, getattr(record, "steps_run", 0))
        self._set_label(self.progress_label, f"epoch {record.epoch:.2f}/{epochs} · step {step:,}{total}")
        self._set_label(self.rate_label, "" if record.rate != record.rate else f"{record.rate:,.0f} steps/s")
        if wall is None:
            wall = record.wall_seconds
            self._set_label(self.elapsed_label, f"{wall:.1f} s of training" if wall else "")
        else:
            minutes, seconds = divmod(int(wall), 60)
            self._set_label(self.elapsed_label, f"{minutes}:{seconds:02d} elapsed")

    @staticmethod
    def _set_label(label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)

    def update_controls(self) -> None:
        """One button per act: Train starts a run, Pause/Resume toggles it (Space does either)."""
        active = self.active is not None
        paused = bool(active and self.active.control.paused)
        self.train_action.setEnabled(not active)
        self.pause_action.setText("Resume" if paused else "Pause")
        self.pause_action.setEnabled(active)
        self.stop_action.setEnabled(active)
        if active:
            for record in self.active.records:
                if record.paused != paused:
                    record.paused = paused        # the run notes and the run list say "paused"
                    self.dashboard.notes.show_run(self.focus_record(self.runs.checked_records()))
                    self.runs.update_record(record)
        self._update_status()

    # ==================================================================== closing

    def closeEvent(self, event) -> None:
        self.save_layout()
        self._closing = True
        self.timer.stop()
        controls = [job.control for job in self.jobs.values()]
        self.active = None
        t0 = time.monotonic()
        if not self.worker.shutdown(controls):
            print(f"descent: the training thread did not stop within {time.monotonic() - t0:.0f} s")
        if not self.comparison.shutdown():
            print("descent: the comparison thread did not stop in time")
        self.data_panel.wait_loaded()   # a data preview still loading must not report to a closed window
        if self.arena is not None and hasattr(self.arena, "shutdown"):
            self.arena.shutdown()
        super().closeEvent(event)
