"""The toolbar's speed control: how many optimizer steps a second the window lets a run take.

A tiny network trains thousands of steps a second; the default spiral
experiment would be over in three seconds, before the eye finds the curves.
The control sets a *pace* on the run's :class:`~engine.control.RunControl`
(:meth:`~engine.control.RunControl.set_pace`): the engine hands out steps in
slices and waits between them.  Pacing only changes when the window looks,
never what is computed: the same seed ends with the same weights at every
speed.  A network slower than the cap simply runs at its own speed.

The levels are steps per second, chosen so the default spiral experiment
(8,550 steps) takes about 17 s at "watchable"; "as fast as possible" is the
last notch and the ▶▶ button beside the slider, one click away.  The choice
is remembered between launches.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QToolButton, QWidget

# (name, steps per second; None: no cap), slowest first
LEVELS = (("slow motion", 30.0), ("slow", 120.0), ("watchable", 500.0), ("fast", 2500.0),
          ("as fast as possible", None))
DEFAULT_LEVEL = 2
SETTINGS_KEY = "training/speed"
TIP = ("How fast the window trains: at most so many optimizer steps a second. Slow it down to watch the "
       "curves and the decision boundary form; pacing only changes when the window looks, never the "
       "result (the same seed ends with the same weights at every speed). A large network may be slower "
       "than the cap anyway.")


class SpeedControl(QWidget):
    """A slider over :data:`LEVELS` plus a "▶▶" button for the fastest; ``changed(pace)`` on a change
    (pace: steps per second or None).  ``control()`` gives the running job's control, if any,
    which is paced at once."""

    changed = Signal(object)

    def __init__(self, settings: QSettings | None = None, control: Callable[[], object] | None = None,
                 parent=None):
        super().__init__(parent)
        self.settings = settings
        self._control = control or (lambda: None)
        self._slower = DEFAULT_LEVEL      # where ▶▶ returns to
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        title = QLabel("speed")
        self.slider = QSlider(Qt.Horizontal)
        self.slider.setRange(0, len(LEVELS) - 1)
        self.slider.setPageStep(1)
        self.slider.setTickPosition(QSlider.TicksBelow)
        self.slider.setFixedWidth(110)
        self.label = QLabel()
        self.label.setMinimumWidth(max(self.label.fontMetrics().horizontalAdvance(_text(level))
                                       for level in range(len(LEVELS))) + 8)
        self.fastest = QToolButton()
        self.fastest.setText("▶▶")
        self.fastest.setCheckable(True)
        self.fastest.setToolTip("As fast as possible (click again: back to the slower speed)")
        for w in (title, self.slider, self.label):
            w.setToolTip(TIP)
        for w in (title, self.slider, self.fastest, self.label):
            layout.addWidget(w)
        level = DEFAULT_LEVEL
        if settings is not None:
            try:
                level = int(settings.value(SETTINGS_KEY, DEFAULT_LEVEL))
            except (TypeError, ValueError):
                level = DEFAULT_LEVEL
        self.slider.setValue(min(max(level, 0), len(LEVELS) - 1))
        self._show()
        self.slider.valueChanged.connect(self._moved)
        self.fastest.clicked.connect(self._fastest_clicked)

    def level(self) -> int:
        return self.slider.value()

    def pace(self) -> float | None:
        """Steps per second the next run may take (None: as fast as possible)."""
        return LEVELS[self.level()][1]

    def set_level(self, level: int) -> None:
        self.slider.setValue(level)

    def set_fastest(self) -> None:
        self.set_level(len(LEVELS) - 1)

    def _fastest_clicked(self, checked: bool) -> None:
        self.set_level(len(LEVELS) - 1 if checked else self._slower)

    def _moved(self, level: int) -> None:
        if LEVELS[level][1] is not None:
            self._slower = level
        if self.settings is not None:
            self.settings.setValue(SETTINGS_KEY, level)
        self._show()
        control = self._control()
        if control is not None:
            control.set_pace(self.pace())
        self.changed.emit(self.pace())

    def _show(self) -> None:
        self.label.setText(_text(self.level()))
        self.fastest.setChecked(self.pace() is None)


def _text(level: int) -> str:
    name, pace = LEVELS[level]
    return name if pace is None else f"{name} · {pace:,.0f} steps/s"
