"""The model builder: the stack of dense layers as an editable list.

Add, duplicate, remove, drag to reorder (or move with the arrow buttons);
the form below edits the selected layer with the engine's ``LAYER_PARAMS``
specs (activation and initializer choices come from their registries, their
own parameters from each entry's ``params``).  The output layer follows the
task and says so.  Parameter counts come from the engine's own network
layout (``engine.training.network.Network``), never from a second formula here.
"""
from __future__ import annotations

import copy

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton,
                               QStackedWidget, QToolButton, QVBoxLayout, QWidget)

from engine.catalog.activations import ACTIVATIONS
from engine.errors import DescentError
from engine.spec.experiment import resolve_experiment
from engine.spec.sections import LAYER_PARAMS, OUTPUT_PARAMS
from engine.catalog.initializers import INITIALIZERS
from engine.training.network import Network, output_spec

from .widgets.params import ParamForm, format_value

MAIN_KEYS = ("units", "activation", "initializer", "batch_norm", "dropout", "l1", "l2", "max_norm", "trainable")
ADVANCED_KEYS = ("use_bias", "bn_momentum", "bn_epsilon", "alpha_dropout")
ACT_DOCS = {name: a.doc for name, a in ACTIVATIONS.items()}
INIT_DOCS = {name: i.doc for name, i in INITIALIZERS.items()}
LOSS_NAMES = {"cross_entropy": "cross-entropy", "binary_cross_entropy": "binary cross-entropy", "mse": "MSE"}


def default_layer() -> dict:
    return {"units": 32, "activation": "elu", "initializer": None, "batch_norm": "none", "dropout": 0.0,
            "l1": 0.0, "l2": 0.0, "max_norm": None, "trainable": True}


def complete_layer(layer: dict) -> dict:
    """A copy with every scalar key of LAYER_PARAMS present (defaults filled in)."""
    out = {k: copy.deepcopy(p.default) for k, p in LAYER_PARAMS.items()
           if k not in ("activation_params", "initializer_params")}
    out.update(copy.deepcopy(layer))
    return out


def layer_text(i: int, layer: dict, n_params: int | None) -> str:
    init = layer.get("initializer") or f"auto: {ACTIVATIONS.get(layer['activation']).default_initializer}"
    parts = [f"{i + 1}.  {layer['units']} units", layer["activation"], init]
    ap = layer.get("activation_params") or {}
    if ap:
        parts[1] += "(" + ", ".join(f"{k}={format_value(v)}" for k, v in ap.items()) + ")"
    if layer.get("batch_norm", "none") != "none":
        parts.append(f"BN {layer['batch_norm']}")
    if layer.get("dropout"):
        parts.append(("alpha-dropout " if layer.get("alpha_dropout") else "dropout ") + format_value(layer["dropout"]))
    for key in ("l1", "l2"):
        if layer.get(key):
            parts.append(f"{key} {format_value(layer[key])}")
    if layer.get("max_norm") is not None:
        parts.append(f"max-norm {format_value(layer['max_norm'])}")
    if not layer.get("trainable", True):
        parts.append("FROZEN")
    text = " · ".join(parts)
    if n_params is not None:
        text += f"   [{n_params:,} params]"
    return text


class LayerList(QListWidget):
    """The hidden layers; drag a row to reorder."""

    reordered = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDragDropMode(QAbstractItemView.InternalMove)
        self.setDefaultDropAction(Qt.MoveAction)
        self.setSelectionMode(QAbstractItemView.SingleSelection)
        self.setWordWrap(True)
        self.setAlternatingRowColors(True)
        self.setToolTip("Hidden layers, input at the top. Drag a row to move it; select one to edit it below.")
        self.model().rowsMoved.connect(lambda *args: self.reordered.emit())


class ModelBuilder(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layers: dict[int, dict] = {}
        self.output: dict = {"activation": "auto"}
        self._next_id = 1
        self._syncing = False
        self.data_info = None
        self.counts: list[int] | None = None
        self.count_error = ""

        self.input_label = QLabel("Input")
        self.input_label.setStyleSheet("color: #333; padding: 2px;")
        self.list = LayerList()
        self.list.currentRowChanged.connect(self._selection_changed)
        self.list.reordered.connect(self._reordered)
        self.output_button = QPushButton("Output")
        self.output_button.setCheckable(True)
        self.output_button.setStyleSheet("text-align: left; padding: 4px;")
        self.output_button.setToolTip("The output layer: its activation and size follow the task. Click to edit.")
        self.output_button.clicked.connect(self._select_output)
        self.total_label = QLabel()
        bold = QFont()
        bold.setBold(True)
        self.total_label.setFont(bold)

        buttons = QHBoxLayout()
        for text, tip, slot in (("Add", "Add a hidden layer below the selected one (Ctrl+Shift+A)", self.add_layer),
                                ("Duplicate", "Copy the selected layer", self.duplicate_layer),
                                ("Remove", "Delete the selected layer", self.remove_layer),
                                ("▲", "Move the selected layer up", lambda: self.move_layer(-1)),
                                ("▼", "Move the selected layer down", lambda: self.move_layer(1))):
            b = QPushButton(text)
            b.setToolTip(tip)
            b.clicked.connect(lambda _=False, s=slot: s())
            if len(text) == 1:
                b.setMaximumWidth(32)
            buttons.addWidget(b)
            setattr(self, f"{'up' if text == '▲' else 'down' if text == '▼' else text.lower()}_button", b)
        buttons.addStretch(1)

        # the layer editor
        self.form = ParamForm({k: LAYER_PARAMS[k] for k in MAIN_KEYS}, prefix="layer.",
                              item_docs={"activation": ACT_DOCS, "initializer": INIT_DOCS})
        self.act_form = ParamForm(prefix="layer.activation_params.")
        self.init_form = ParamForm(prefix="layer.initializer_params.")
        self.adv_form = ParamForm({k: LAYER_PARAMS[k] for k in ADVANCED_KEYS}, prefix="layer.")
        for f in (self.form, self.act_form, self.init_form, self.adv_form):
            f.changed.connect(self._layer_edited)
        adv_toggle = QToolButton(text="Advanced ▸", checkable=True)
        adv_toggle.setStyleSheet("QToolButton { border: none; color: #1f4e99; }")
        adv_toggle.toggled.connect(lambda on: (self.adv_form.setVisible(on),
                                               adv_toggle.setText("Advanced ▾" if on else "Advanced ▸")))
        self.editor_title = QLabel()
        self.editor_title.setFont(bold)
        layer_editor = QWidget()
        le = QVBoxLayout(layer_editor)
        le.setContentsMargins(0, 0, 0, 0)
        le.addWidget(self.form)
        le.addWidget(self.act_form)
        le.addWidget(self.init_form)
        le.addWidget(adv_toggle, 0, Qt.AlignLeft)
        le.addWidget(self.adv_form)
        le.addStretch(1)
        self.adv_form.hide()
        # the output editor
        self.out_form = ParamForm({k: p for k, p in OUTPUT_PARAMS.items() if k != "initializer_params"},
                                  prefix="model.output.", item_docs={"initializer": INIT_DOCS,
                                                                      "activation": ACT_DOCS})
        self.out_init_form = ParamForm(prefix="model.output.initializer_params.")
        self.out_form.changed.connect(self._output_edited)
        self.out_init_form.changed.connect(self._output_edited)
        out_editor = QWidget()
        oe = QVBoxLayout(out_editor)
        oe.setContentsMargins(0, 0, 0, 0)
        oe.addWidget(self.out_form)
        oe.addWidget(self.out_init_form)
        oe.addStretch(1)
        self.empty_editor = QLabel("No hidden layer: the network is a linear/logistic model. Add a layer.")
        self.empty_editor.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(layer_editor)
        self.stack.addWidget(out_editor)
        self.stack.addWidget(self.empty_editor)
        self.list.setMinimumHeight(90)
        self.list.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.input_label)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.output_button)
        layout.addLayout(buttons)
        layout.addWidget(self.total_label)
        layout.addWidget(self.editor_title)
        layout.addWidget(self.stack, 3)
        self.set_model({"layers": [default_layer()] * 2, "output": {"activation": "auto"}})

    # -- the model dict ------------------------------------------------------------------------

    def model(self) -> dict:
        return {"layers": [copy.deepcopy(self.layers[self._id_at(i)]) for i in range(self.list.count())],
                "output": copy.deepcopy(self.output)}

    def set_model(self, model: dict) -> None:
        self._syncing = True
        self.list.clear()
        self.layers = {}
        for layer in model.get("layers", []):
            self._append(complete_layer(layer))
        self.output = copy.deepcopy(model.get("output", {"activation": "auto"}))
        self._syncing = False
        self.out_form.set_values(self.output)
        self._refresh_out_init()
        self.refresh()
        if self.list.count():
            self.list.setCurrentRow(0)
        else:
            self._select_output()

    def layer_count(self) -> int:
        return self.list.count()

    def _id_at(self, row: int) -> int:
        return self.list.item(row).data(Qt.UserRole)

    def _append(self, layer: dict, row: int | None = None) -> int:
        lid = self._next_id
        self._next_id += 1
        self.layers[lid] = layer
        item = QListWidgetItem()
        item.setData(Qt.UserRole, lid)
        item.setFlags(item.flags() | Qt.ItemIsDragEnabled)
        item.setFlags(item.flags() & ~Qt.ItemIsDropEnabled)
        if row is None:
            self.list.addItem(item)
        else:
            self.list.insertItem(row, item)
        return lid

    # -- actions -------------------------------------------------------------------------------

    def add_layer(self, layer: dict | None = None) -> None:
        row = self.list.currentRow()
        row = self.list.count() if row < 0 or self.stack.currentIndex() != 0 else row + 1
        self._append(complete_layer(layer or default_layer()), row)
        self.list.setCurrentRow(row)
        self._structure_changed()

    def duplicate_layer(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        self._append(copy.deepcopy(self.layers[self._id_at(row)]), row + 1)
        self.list.setCurrentRow(row + 1)
        self._structure_changed()

    def remove_layer(self) -> None:
        row = self.list.currentRow()
        if row < 0:
            return
        item = self.list.takeItem(row)
        self.layers.pop(item.data(Qt.UserRole), None)
        if self.list.count():
            self.list.setCurrentRow(min(row, self.list.count() - 1))
        else:
            self._select_output()
        self._structure_changed()

    def move_layer(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)
        self._structure_changed()

    def _reordered(self) -> None:
        self._structure_changed()

    def _structure_changed(self) -> None:
        self.refresh()
        self.changed.emit()

    # -- selection and editing -------------------------------------------------------------------

    def _selection_changed(self, row: int) -> None:
        if self._syncing:
            return
        if row < 0:
            self.stack.setCurrentIndex(2 if not self.list.count() else 1)
            return
        self.output_button.setChecked(False)
        layer = self.layers[self._id_at(row)]
        self._syncing = True
        self.form.set_values({k: layer.get(k, LAYER_PARAMS[k].default) for k in MAIN_KEYS})
        self.adv_form.set_values({k: layer.get(k, LAYER_PARAMS[k].default) for k in ADVANCED_KEYS})
        self._refresh_sub_forms(layer)
        self._syncing = False
        self.editor_title.setText(f"Hidden layer {row + 1}")
        self.stack.setCurrentIndex(0)

    def _select_output(self) -> None:
        self.list.setCurrentRow(-1)
        self.list.clearSelection()
        self.output_button.setChecked(True)
        self.editor_title.setText("Output layer")
        self.stack.setCurrentIndex(1)

    def select_layer(self, row: int) -> None:
        self.list.setCurrentRow(row)

    def _refresh_sub_forms(self, layer: dict) -> None:
        act = ACTIVATIONS.get(layer["activation"])
        self.act_form.set_spec(act.params, layer.get("activation_params") or {})
        init_name = layer.get("initializer") or act.default_initializer
        self.init_form.set_spec(INITIALIZERS.get(init_name).params, layer.get("initializer_params") or {})

    def _refresh_out_init(self) -> None:
        init = self.output.get("initializer") or "glorot_uniform"
        self.out_init_form.set_spec(INITIALIZERS.get(init).params, self.output.get("initializer_params") or {})

    def _layer_edited(self) -> None:
        if self._syncing:
            return
        row = self.list.currentRow()
        if row < 0:
            return
        layer = self.layers[self._id_at(row)]
        old_act, old_init = layer.get("activation"), layer.get("initializer")
        layer.update(self.form.values())
        layer.update(self.adv_form.values())
        if layer["activation"] != old_act or layer.get("initializer") != old_init:
            if layer["activation"] != old_act:
                layer["activation_params"] = {}
            if layer.get("initializer") != old_init:
                layer["initializer_params"] = {}
            self._syncing = True
            self._refresh_sub_forms(layer)
            self._syncing = False
        if self.act_form.editors:
            layer["activation_params"] = self.act_form.values()
        else:
            layer.pop("activation_params", None)
        if self.init_form.editors:
            layer["initializer_params"] = self.init_form.values()
        else:
            layer.pop("initializer_params", None)
        self.refresh()
        self.changed.emit()

    def _output_edited(self) -> None:
        if self._syncing:
            return
        old_init = self.output.get("initializer")
        self.output.update(self.out_form.values())
        if self.output.get("initializer") != old_init:
            self.output["initializer_params"] = {}
            self._refresh_out_init()
        elif self.out_init_form.editors:
            self.output["initializer_params"] = self.out_init_form.values()
        self.refresh()
        self.changed.emit()

    # -- the live summary ----------------------------------------------------------------------

    def set_data_info(self, info) -> None:
        self.data_info = info
        self.refresh()

    def refresh(self) -> None:
        """Renumber rows, recount parameters, describe input and output."""
        self.counts, self.count_error = self._count_params()
        model = self.model()
        for i, layer in enumerate(model["layers"]):
            n = self.counts[i] if self.counts else None
            self.list.item(i).setText(layer_text(i, layer, n))
        info = self.data_info
        if info is None:
            self.input_label.setText("Input: (data not loaded yet)")
        else:
            shape = f"{info.image_shape[0]}×{info.image_shape[1]} image = " if info.image_shape else ""
            self.input_label.setText(f"Input: {shape}{info.n_inputs} features ({info.name})")
        self.output_button.setText(self._output_text())
        if self.counts:
            self.total_label.setText(f"Total: {sum(self.counts):,} trainable parameters in "
                                     f"{len(self.counts)} dense layers")
            self.total_label.setStyleSheet("")
        else:
            self.total_label.setText(self.count_error or "")
            self.total_label.setStyleSheet("color: #b00020;" if self.count_error else "")

    def _output_text(self) -> str:
        info = self.data_info
        chosen = self.output.get("activation", "auto")
        if info is None:
            return f"Output: {chosen} (follows the task once the data are loaded)"
        try:
            act, units, loss = output_spec({"model": {"output": {"activation": chosen}}}, info.task,
                                           info.n_classes, info.n_targets)
        except DescentError as exc:
            return f"Output: {chosen} ✗ {exc}"
        task = (f"{info.n_classes}-class classification" if info.task == "classification" else info.task)
        how = "follows the task" if chosen == "auto" else "chosen"
        n = f"   [{self.counts[-1]:,} params]" if self.counts else ""
        return (f"Output: {units} {act} unit{'s' if units != 1 else ''}, {LOSS_NAMES[loss]} loss{n}\n"
                f"{how}: {task}")

    def _count_params(self) -> tuple[list[int] | None, str]:
        info = self.data_info
        if info is None:
            return None, ""
        try:
            exp = resolve_experiment({"model": self.model(), "training": {"dtype": "float32"}})
            net = Network(exp, info.n_inputs, info.task, info.n_classes, info.n_targets)
        except DescentError as exc:
            return None, str(exc)
        return [li.n_params for li in net.layer_infos()], ""
