"""The coach in the window: findings found on the training thread reach the focus run's
panel, and "Try it" trains the modified variant overlaid on the original."""
import copy
import threading

import pytest

from engine.coach import Coach, Finding
from gui.coach_panel import SEVERITY_COLORS, STAGE_TIP
from test_gui_window import FIRST_RUN_TIMEOUT, SMALL, make_window

pytestmark = pytest.mark.gui

RELU = {"units": 32, "activation": "relu"}
# three ReLU layers at Adam 0.1: most units of layers 2 and 3 die within 30 steps (dead_relus)
DYING = {"name": "dying", "seed": 3, "data": {"name": "moons", "n_samples": 200, "noise": 0.1},
         "model": {"layers": [RELU] * 3}, "optimizer": {"name": "adam", "learning_rate": 0.1},
         "training": {"epochs": 10, "batch_size": 20}}
# SGD at 1e6: the loss is NaN after a step or two (exploding_gradients, a "problem")
DIVERGING = dict(copy.deepcopy(SMALL), name="diverging", model={"layers": [{"units": 16, "activation": "relu"}] * 2},
                 optimizer={"name": "sgd", "learning_rate": 1e6})


def train(w, qtbot):
    """Train the editors' experiment to its end; its record (the job's first)."""
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    w.redraw()
    return job.records[0]


def card(w, detector):
    return next(c for c in w.dashboard.coach.cards if c.finding.detector == detector)


def test_a_dying_relu_run_shows_the_finding_with_its_button(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, DYING)
    record = train(w, qtbot)
    assert record.status == "finished", record.reason
    assert "dead_relus" in [f.detector for f in record.findings]
    panel = w.dashboard.coach
    assert panel.record is record and len(panel.cards) == len(record.findings)
    dead = card(w, "dead_relus")
    assert "Dying ReLUs" in dead.title.text() and SEVERITY_COLORS["warning"] in dead.title.text()
    assert f"at step {dead.finding.step:,}" in dead.title.text()
    assert "output 0 for every probe example" in dead.seen.text()
    assert dead.button.full_text == "Try it: Replace ReLU by leaky ReLU (alpha 0.2)" and dead.button.isEnabled()
    assert "leaky" in dead.seen.toolTip()                     # the book's advice, in the tooltip...
    assert not dead.advice.isVisibleTo(dead)
    dead.book.click()                                         # ... or unfolded under "The book"
    assert dead.advice.isVisibleTo(dead) and "leaky" in dead.advice.text()
    # the panel is rebuilt when the findings change, not on every redraw
    rebuilds = panel.rebuilds
    for _ in range(5):
        w.redraw(force=False)
    assert panel.rebuilds == rebuilds


def test_try_it_loads_the_variant_and_trains_it_overlaid_on_the_original(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, DYING)
    original = train(w, qtbot)
    card(w, "dead_relus").button.click()
    exp = w.current_experiment()                              # the editors show the coach's variant
    assert exp["name"] == "dying-coach-dead_relus"
    assert all(l["activation"] == "leaky_relu" and l["activation_params"]["alpha"] == 0.2
               for l in exp["model"]["layers"])
    assert exp["optimizer"] == original.experiment["optimizer"]
    assert "coach: Replace ReLU by leaky ReLU" in w.header.text() and original.name in w.header.text()
    assert w.active is not None                               # and it trains at once (nothing was running)
    variant = w.active.record
    qtbot.waitUntil(lambda: w.active is None, timeout=60_000)
    assert variant is not original and variant.status == "finished", variant.reason
    assert variant.experiment["model"]["layers"][0]["activation"] == "leaky_relu"
    assert w.runs.is_checked(original.run_id) and w.runs.is_checked(variant.run_id)
    name = w.runs.items[variant.run_id].text(0)               # what changed, not the folder's internal name
    assert name.startswith(f"#{variant.run_id} coach: Replace ReLU by leaky ReLU") and "-coach-" not in name
    w.redraw()
    assert {key[0] for key in w.dashboard.loss.items} >= {original.run_id, variant.run_id}   # overlaid


def test_try_it_during_a_run_stops_it_first_and_never_runs_two_jobs(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, dict(DYING, training={"epochs": 5000, "batch_size": 20}))
    jobs_at_submit = []
    submit = w.worker.submit
    w.worker.submit = lambda job: (jobs_at_submit.append(len(w.jobs)), submit(job))
    w.train_or_pause()
    original = w.active.record
    qtbot.waitUntil(lambda: len(original.findings) > 0, timeout=FIRST_RUN_TIMEOUT)
    w.redraw()
    card(w, original.findings[0].detector).button.click()
    assert w.active is not None and w.active.record is original and w.active.control.stopped
    qtbot.waitUntil(lambda: w.active is not None and w.active.record is not original, timeout=30_000)
    variant = w.active.record
    assert original.status == "stopped" and jobs_at_submit == [1, 1]   # the variant waited for the job's end
    assert variant.experiment["name"].startswith("dying-coach-")
    w.stop()
    qtbot.waitUntil(lambda: w.active is None, timeout=30_000)
    assert w.runs.is_checked(original.run_id) and w.runs.is_checked(variant.run_id)


def test_a_healthy_run_shows_no_finding(qtbot, tmp_path):
    w = make_window(qtbot, tmp_path, SMALL)                   # ReLU + tanh, SGD 0.05: nothing to report
    record = train(w, qtbot)
    assert record.status == "finished" and record.findings == []
    panel = w.dashboard.coach
    assert panel.record is record and panel.cards == []
    assert "saw none" in panel.header.text() and "dead ReLUs" in panel.header.text()


def test_findings_are_found_on_the_training_thread_and_arrive_in_its_batches(qtbot, tmp_path, monkeypatch):
    threads = set()
    observe = Coach.observe

    def watched(self, event):
        threads.add(threading.get_ident())
        return observe(self, event)

    monkeypatch.setattr(Coach, "observe", watched)
    w = make_window(qtbot, tmp_path, DIVERGING)
    batched = []
    w.worker.worker.batch.connect(lambda _job, events: batched.extend(e for e in events if isinstance(e, Finding)))
    record = train(w, qtbot)
    assert record.status == "diverged"
    assert threads and threading.get_ident() not in threads          # never on the GUI thread
    assert [f.detector for f in batched] == ["exploding_gradients"] and record.findings == batched
    assert "diverged" in w.statusBar().currentMessage()               # a finding after RunFinished hides nothing
    exploding = card(w, "exploding_gradients")
    assert SEVERITY_COLORS["problem"] in exploding.title.text()
    assert exploding.button.full_text == "Try it: Clip the gradient's global norm to 1"
    exploding.button.click()
    assert w.current_experiment()["optimizer"]["global_clipnorm"] == 1.0
    qtbot.waitUntil(lambda: w.active is None, timeout=60_000)


def test_each_variant_of_a_comparison_gets_its_own_findings(qtbot, tmp_path):
    compared = dict(copy.deepcopy(DYING), name="race",
                    compare={"variants": [{"name": "adam 0.1"},
                                          {"name": "elu", "overrides": {"optimizer": {"learning_rate": 0.01},
                                                                        "model": {"layers": {"activation": "elu"}}}},
                                          {"name": "adam 0.05", "overrides": {"optimizer": {"learning_rate": 0.05}}}],
                             "seeds": 1})
    w = make_window(qtbot, tmp_path, compared)
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    fast, healthy, slower = job.records
    assert "dead_relus" in [f.detector for f in fast.findings]
    assert healthy.findings == []
    assert "dead_relus" in [f.detector for f in slower.findings]     # the coach watched it afresh
    w.runs.setCurrentItem(w.runs.items[slower.run_id])
    w.redraw()
    card(w, "dead_relus").button.click()                             # from the variant's own experiment
    exp = w.current_experiment()
    assert exp["optimizer"]["learning_rate"] == 0.05 and exp["model"]["layers"][0]["activation"] == "leaky_relu"
    assert not exp.get("compare")
    qtbot.waitUntil(lambda: w.active is None, timeout=60_000)
    assert w.runs.is_checked(slower.run_id)


def test_a_stage_finding_has_no_try_it(qtbot, tmp_path):
    staged = dict(copy.deepcopy(DYING), name="dying-stages", stages={"seeds": 1, "list": [
        {"name": "a", "title": "source"},
        {"name": "reuse", "data": {"n_samples": 100}, "reuse": {"from": "a", "layers": "all_but_output"},
         "phases": [{"name": "frozen", "epochs": 2}, {"name": "unfrozen", "epochs": 4, "freeze": "none"}]}]})
    w = make_window(qtbot, tmp_path, staged)
    w.train_or_pause()
    job = w.active
    qtbot.waitUntil(lambda: w.active is None, timeout=FIRST_RUN_TIMEOUT)
    first, second = job.records
    assert first.findings and second.findings
    assert all(f.step <= first.step for f in first.findings)          # each stage's findings on its own record
    assert {f.run_id for f in first.findings}.isdisjoint({f.run_id for f in second.findings})
    w.runs.setCurrentItem(w.runs.items[second.run_id])
    w.redraw()
    assert w.dashboard.coach.record is second
    for c in w.dashboard.coach.cards:
        assert not c.button.isEnabled() and c.button.toolTip() == STAGE_TIP
    before = len(w.records)
    w.try_finding(second, second.findings[0])                          # and the window refuses it too
    assert len(w.records) == before and w.active is None
