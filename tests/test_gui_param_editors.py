"""One editor stack: a Param edits the same way in the Train tab, the arena and the Compare tab.

For every optimizer, schedule, clipping, activation and initializer Param, the editor the
Train tab shows and the one the arena shows (for activations and initializers, which the
arena does not edit: the one the shared factory builds) are compared by what they do: same
class, same range and tooltip, the same values after the same arrow presses, the same
refusals, and every value set is the value read back.  The stepping rule itself is checked
against hand-computed values.
"""
import pytest

from engine.arena.race import RacerSpec
from engine.catalog.activations import ACTIVATIONS
from engine.catalog.initializers import INITIALIZERS
from engine.catalog.optimizers import OPTIMIZERS
from engine.catalog.schedules import SCHEDULES
from engine.errors import ExperimentError
from engine.params import Param
from engine.spec.sections import LAYER_PARAMS, OPTIMIZER_CLIP_PARAMS, TRAINING_PARAMS

pytestmark = pytest.mark.gui

CASES = ([("optimizer", name, key) for name, cls in OPTIMIZERS.items()
          for key in ("learning_rate", *cls.hyperparameters)]
         + [("schedule", name, key) for name, cls in SCHEDULES.items() for key in cls.hyperparameters]
         + [("clip", "", key) for key in OPTIMIZER_CLIP_PARAMS]
         + [("activation", name, key) for name, act in ACTIVATIONS.items() for key in act.params]
         + [("initializer", name, key) for name, init in INITIALIZERS.items() for key in init.params])


def _train_tab_editor(qtbot, group, name, key):
    """The editor the Train tab shows for this Param (optimizer panel or model builder), and
    the panel holding it (kept alive by the caller: qtbot holds widgets weakly)."""
    from gui.builder import ModelBuilder
    from gui.panels import OptimizerPanel

    if group in ("optimizer", "schedule", "clip"):
        panel = OptimizerPanel()
        qtbot.addWidget(panel)
        panel.set_config({"name": name if group == "optimizer" else "sgd"},
                         {"name": name if group == "schedule" else "constant"})
        form = {"optimizer": panel.form, "schedule": panel.schedule_form, "clip": panel.clip_form}[group]
        return form.editor(key), panel
    builder = ModelBuilder()
    qtbot.addWidget(builder)
    layer = {"units": 4, "activation": name} if group == "activation" else \
        {"units": 4, "activation": "relu", "initializer": name}
    builder.set_model({"layers": [layer], "output": {"activation": "auto"}})
    return (builder.act_form if group == "activation" else builder.init_form).editor(key), builder


def _arena_editor(qtbot, group, name, key, train_editor):
    """The editor the arena's racer editor shows (the shared factory's for what the arena does not
    edit), and the widget holding it."""
    from gui.arena_racers import RacerEditor
    from gui.widgets.params import make_editor

    if group in ("activation", "initializer"):
        editor = make_editor(train_editor.param, train_editor.where)
        qtbot.addWidget(editor)
        return editor, editor
    racer = RacerEditor()
    qtbot.addWidget(racer)
    racer.set_spec(RacerSpec("racer", {"name": name if group == "optimizer" else "sgd", "learning_rate": 0.1},
                             {"name": name if group == "schedule" else "constant"}), "#1f77b4")
    form = {"optimizer": racer.hyper_form, "schedule": racer.schedule_form, "clip": racer.clip_form}[group]
    return form.editor(key), racer


def _samples(param: Param) -> list:
    """Values the Param accepts: its default, its closed bounds, points inside, None if optional."""
    if param.kind == "bool":
        raw = [True, False]
    elif param.kind == "choice":
        raw = list(param.choices)
    elif param.kind in ("ints", "floats"):
        low = param.low if param.low is not None else 0
        first = low + 1 if param.low_open else low
        raw = [[], [first], [first, first + 2]] if param.kind == "ints" else [[], [first + 0.5, first + 0.25]]
        raw = [[int(v) for v in r] if param.kind == "ints" else r for r in raw]
    elif param.kind == "str":
        raw = ["text"]
    else:
        raw = [param.default, 0.5, 3, 0.001, -2.5, 1e-7, 250]
        raw += [b for b, is_open in ((param.low, param.low_open), (param.high, param.high_open))
                if b is not None and not is_open]
    raw.append(param.default)
    if param.optional:
        raw.append(None)
    accepted = []
    for value in raw:
        try:
            value = param.check(value, "x")
        except ExperimentError:
            continue
        if value not in accepted:
            accepted.append(value)
    return accepted


@pytest.mark.parametrize("group,name,key", CASES, ids=[f"{g}:{n}.{k}" if n else f"{g}:{k}" for g, n, k in CASES])
def test_a_param_edits_the_same_in_the_train_tab_and_the_arena(qtbot, group, name, key):
    from gui.widgets.params import NumberEditor, TextEditor

    train, _train_panel = _train_tab_editor(qtbot, group, name, key)
    arena, _racer_editor = _arena_editor(qtbot, group, name, key, train)
    assert type(train) is type(arena)
    assert train.param == arena.param                      # the same range, kind and doc
    assert train.base_tooltip == arena.base_tooltip and train.param.doc in train.base_tooltip
    samples = _samples(train.param)
    assert samples, "no value to try"
    for value in samples:
        for editor in (train, arena):
            editor.set_value(value)
            got = editor.value()
            assert got == value and type(got) is type(value), (editor, value, got)
            if isinstance(editor, TextEditor):          # what is shown reads back as the value
                assert editor.type_text(editor.edit.text()) is None and editor.value() == value
    if not isinstance(train, NumberEditor):
        if isinstance(train, TextEditor) and train.param.kind in ("ints", "floats"):
            assert train.type_text("1, x") == arena.type_text("1, x") is not None   # a bad entry is refused alike
        return
    for value in (v for v in samples if v is not None):
        moved = []
        for editor in (train, arena):
            editor.set_value(value)
            editor.spin.stepBy(1)
            up = editor.value()
            editor.spin.stepBy(-2)
            moved.append((up, editor.value()))
        assert moved[0] == moved[1], (value, moved)
        assert moved[0][0] >= value >= moved[0][1]
    for bad in ("-1e9", "1e15", "abc"):
        refusals = [editor.type_text(bad) for editor in (train, arena)]
        assert refusals[0] == refusals[1]


# ------------------------------------------------------------------ the stepping rule

COORDINATE = Param(0.0, "a coordinate", low=-1e6, high=1e6)


@pytest.mark.parametrize("param,start,up,down", [
    (OPTIMIZERS.get("sgd").learning_rate_param(), 0.01, 0.02, 0.005),      # log: 1-2-5
    (OPTIMIZERS.get("adam").hyperparameters["epsilon"], 1e-7, 2e-7, 5e-8),
    (SCHEDULES.get("exponential").hyperparameters["s"], 10000.0, 20000.0, 5000.0),
    (OPTIMIZER_CLIP_PARAMS["clipnorm"], 1.0, 2.0, 0.5),                       # a scale: > 0, no upper bound
    (INITIALIZERS.get("random_normal").params["stddev"], 1.0, 2.0, 0.5),    # (0, 100]: a scale
    (OPTIMIZERS.get("momentum").hyperparameters["momentum"], 0.9, 0.91, 0.89),   # [0, 1): 0.01
    (SCHEDULES.get("performance").hyperparameters["factor"], 0.5, 0.51, 0.49),   # (0, 1) is no scale
    (ACTIVATIONS.get("elu").params["alpha"], 1.0, 1.1, 0.9),                # [0, 10]: 0.1
    (COORDINATE, 0.0, 0.1, -0.1),                                            # too wide: the default's tenth
    (LAYER_PARAMS["l2"], 0.0, 0.1, 0.0),                                     # closed bound: stops there
    (TRAINING_PARAMS["sparsity_threshold"], 1e-3, 1.1e-3, 9e-4),
    (LAYER_PARAMS["units"], 100, 101, 99),                                   # integers: 1
    (TRAINING_PARAMS["max_steps"], 1, 2, 1),
], ids=["learning_rate", "epsilon", "decay_steps", "clipnorm", "stddev", "momentum", "factor", "elu_alpha",
        "coordinate", "l2", "sparsity_threshold", "units", "max_steps"])
def test_one_press_moves_a_number_as_the_rule_says(param, start, up, down):
    from gui.widgets.stepping import stepped

    assert stepped(param, start, 1) == pytest.approx(up, rel=1e-12)
    assert stepped(param, start, -1) == pytest.approx(down, rel=1e-12)


def test_steps_stop_at_a_closed_bound_and_are_not_taken_at_an_open_one():
    from gui.widgets.stepping import stepped

    momentum = OPTIMIZERS.get("momentum").hyperparameters["momentum"]       # [0, 1)
    assert stepped(momentum, 0.99, 1) == 0.99
    factor = SCHEDULES.get("performance").hyperparameters["factor"]           # (0, 1)
    assert stepped(factor, 0.011, -2) == 0.001                               # as far as the presses go
    assert stepped(momentum, 0.005, -1) == 0.0
    assert stepped(LAYER_PARAMS["dropout"], 0.0, -3) == 0.0
    rows = Param(1000, "rows", "int", 10, 1_000_000, log=True)                 # a log-scale integer
    assert [stepped(rows, 1000, n) for n in (1, 2, -1, -2)] == [2000, 5000, 500, 200]
    assert stepped(rows, 10, -1) == 10
    assert isinstance(stepped(rows, 1000, 1), int)


def test_a_number_editor_steps_by_the_rule(qtbot):
    from gui.widgets.params import NumberEditor

    angle = NumberEditor(Param(0.0, "angle", low=-90.0, high=90.0), "surface.angle")
    qtbot.addWidget(angle)
    for _ in range(3):
        angle.spin.stepBy(1)
    assert angle.value() == 3.0
    angle.spin.stepBy(-100)
    assert angle.value() == -90.0


# ------------------------------------------------------------------ Compare tab

def test_the_compare_tab_settings_are_checked_like_the_experiment_keys(qtbot):
    from gui.compare import ComparisonView

    view = ComparisonView()
    qtbot.addWidget(view)
    assert view.seeds.value() == 3 and view.max_steps.value() is None   # as planned
    assert view.max_steps.spin.lineEdit().text() == ""
    assert view.max_steps.spin.lineEdit().placeholderText() == "as planned (the experiment's epochs)"
    assert "compare.seeds" in view.seeds.type_text("51") and view.seeds.value() == 3
    assert view.seeds.type_text("2") is None and view.seeds.value() == 2
    view.max_steps.enabled_box.setChecked(True)
    assert view.max_steps.value() == 100
    message = view.max_steps.type_text("0")
    with pytest.raises(ExperimentError) as schema:
        TRAINING_PARAMS["max_steps"].check(0, "training.max_steps")
    assert message == str(schema.value)
    view.max_steps.spin.stepBy(1)
    assert view.max_steps.value() == 101
    view.max_steps.enabled_box.setChecked(False)
    assert view.max_steps.value() is None


def test_an_unset_optional_number_says_what_unset_means_and_keeps_its_number(qtbot):
    from gui.widgets.params import NumberEditor

    max_lr = NumberEditor(SCHEDULES.get("onecycle").hyperparameters["max_lr"], "schedule.max_lr")
    clip = NumberEditor(OPTIMIZER_CLIP_PARAMS["clipnorm"], "optimizer.clipnorm")
    for editor in (max_lr, clip):
        qtbot.addWidget(editor)
    assert max_lr.spin.lineEdit().placeholderText() == "the optimizer's learning rate"
    assert clip.spin.lineEdit().placeholderText() == "off"
    assert clip.value() is None and clip.spin.lineEdit().text() == ""
    clip.enabled_box.setChecked(True)
    assert clip.type_text("0.5") is None and clip.spin.lineEdit().text() == "0.5"
    clip.set_value(None)
    assert clip.value() is None and clip.spin.lineEdit().text() == ""
    clip.enabled_box.setChecked(True)                     # ticked on again: the number it had
    assert clip.value() == 0.5 and clip.spin.lineEdit().text() == "0.5"
