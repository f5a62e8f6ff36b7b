"""Drawing of the optimizer arena: the contour map, each racer's path,
marker, velocity arrow and step-scale ellipse, the loss plot and the table.

:class:`ArenaDrawing` is a mixin of :class:`gui.arena.ArenaTab` (kept apart
to keep each module short).  It owns the plot items; the tab owns the
settings, the timer and the :class:`engine.arena.race.Arena`.  It expects the tab
to provide ``map_plot``, ``loss_plot``, ``picture``, ``map_caption``,
``step_label``, ``velocity_check``, ``scale_check``, ``running`` and the race
state ``arena``, ``_surface``, ``_specs``, ``_racer_items``, ``_table_time``.
"""
from __future__ import annotations

import math
import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QGraphicsItem, QHeaderView, QTableWidget, QTableWidgetItem

from .arena_racers import PALETTE, optimizer_label
from .arena_widgets import contour_segments

ARROW_SCALE = 3.0        # velocity arrows are drawn this many times their length
ELLIPSE_FRACTION = 0.05  # the step-scale ellipse's larger semi-axis, as a share of the view width
TABLE_INTERVAL = 0.25    # seconds between table updates while running
GRID = 320               # contour map resolution (over the padded box)
MAP_PADDING = 0.4        # the surface is drawn this share of the view beyond each edge
CONTOUR_LEVELS = 14
FINISH_LOSS = 1e-6       # the table's last column: first step below this loss (header says 1e-6)
LOSS_FLOOR = 1e-20       # losses are drawn no lower than this on the log plot
LOSS_CEILING = 1e3       # ... and no higher than this times the highest starting loss
COLUMNS = ["", "Racer", "Step", "Loss", "Distance to minimum", "Step / gradient  |Δθ|/|g|",
           "Step scale x", "Step scale y", "Velocity |v|", "Loss < 1e-6 at step"]
COLUMN_TIPS = [
    "", "Label and optimizer",
    "Optimizer updates taken",
    "Loss at the current position (every surface's minimum is 0)",
    "Distance from the current position to the nearest minimum",
    "Effective step size |Δθ| / |g| of the last step: how far it moved per unit of gradient",
    "Per-coordinate learning rate along x: the step a small gradient along x would produce, "
    "divided by that gradient. Equal x and y for SGD and momentum; adaptive methods make it "
    "larger where gradients have been small.",
    "Per-coordinate learning rate along y (see Step scale x)",
    "Length of the step the racer would take next if the gradient were zero: how far its "
    "momentum carries it (0 for optimizers without momentum)",
    f"First step at which the loss fell below {FINISH_LOSS:g}",
]


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if not math.isfinite(value):
        return "—"
    return f"{value:.{digits}g}"


class ArenaDrawing:
    """The plot items and table of :class:`gui.arena.ArenaTab` (a mixin)."""

    # ================================================ setting up the views
    def _setup_map(self) -> None:
        item = self.map_plot.getPlotItem()
        item.setAspectLocked(True)
        item.setLabel("bottom", "θ₁  (x)")
        item.setLabel("left", "θ₂  (y)")
        item.showGrid(False, False)
        item.setMenuEnabled(False)
        # explicit axis order: the window may set pyqtgraph's global option
        self.image = pg.ImageItem(axisOrder="col-major")  # image[ix, iy], as Surface.grid returns
        self.image.setZValue(-10)
        item.addItem(self.image)
        # neutral greys (low loss darker) so that the racers' colours stand out
        self.colormap = pg.ColorMap([0.0, 0.5, 1.0], ["#7f8a99", "#c9ced6", "#fbfbfc"])
        self.image.setColorMap(self.colormap)
        self.colorbar = pg.ColorBarItem(colorMap=self.colormap, interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=item)
        self.contours = pg.PlotDataItem(connect="pairs", pen=pg.mkPen((40, 40, 50, 70), width=1))
        self.contours.setZValue(-5)
        # the colour map and contours change only with the surface or the
        # zoom: let Qt keep them as pixmaps instead of redrawing every frame
        self.image.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.contours.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        item.addItem(self.contours)
        self.minima_item = pg.ScatterPlotItem(symbol="star", size=18, brush=pg.mkBrush("#ffd400"),
                                              pen=pg.mkPen("k", width=1.2))
        self.minima_item.setZValue(5)
        item.addItem(self.minima_item)
        # a ring above the racers' markers (which sit on the start before the first step and used to
        # hide a white dot under a red one): the caption can name what the student sees
        self.start_item = pg.ScatterPlotItem(symbol="o", size=20, brush=pg.mkBrush(None),
                                             pen=pg.mkPen("k", width=2.5))
        self.start_item.setZValue(12)
        item.addItem(self.start_item)
        self.start_text = pg.TextItem("start", color="k", anchor=(0.5, 1.6))
        self.start_text.setZValue(12)
        item.addItem(self.start_text)

    def _setup_loss_plot(self) -> None:
        item = self.loss_plot.getPlotItem()
        item.setLogMode(False, True)
        # short: a title wider than the plot pushed its right edge (and the legend) out of view
        item.setTitle("Loss versus step (log scale)", color="#222", size="10pt")
        self.loss_plot.setToolTip("Log scale; every minimum of these surfaces has loss 0, so the curves are drawn "
                                  "down to 1e-20")
        item.setLabel("bottom", "step")
        item.getAxis("left").enableAutoSIPrefix(False)   # an empty plot showed -400..400 "x0.001"
        item.setXRange(0, 100, padding=0)
        item.setYRange(-4, 1, padding=0)      # log10: 1e-4 .. 10 until the first steps set the range
        item.enableAutoRange()                # (no data: the range above stays)
        item.showGrid(False, False)  # pyqtgraph redraws grid lines every frame (~10 ms each)
        item.setMenuEnabled(False)
        item.setDownsampling(auto=True, mode="peak")
        item.setClipToView(True)
        self.legend = item.addLegend(offset=(-10, 10), labelTextColor="#222", brush=pg.mkBrush(255, 255, 255, 210))

    def _setup_table(self) -> None:
        """The live table under the plots (one row per racer, filled by _refresh)."""
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        for i, tip in enumerate(COLUMN_TIPS):
            self.table.horizontalHeaderItem(i).setToolTip(tip)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.NoSelection)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.Stretch)
        header.setSectionResizeMode(0, QHeaderView.Fixed)
        header.setSectionResizeMode(1, QHeaderView.Interactive)
        self.table.setColumnWidth(0, 12)
        self.table.setColumnWidth(1, 190)
        header.setDefaultAlignment(Qt.AlignCenter | Qt.TextWordWrap)
        header.setMinimumHeight(40)

    # ============================================================ drawing
    def _draw_surface(self) -> None:
        """Colour map and contour lines.  The surface is sampled beyond its
        view box (MAP_PADDING) so the map stays filled when the plot is not
        square or the user zooms out; the colour range comes from the view box."""
        s = self._surface
        x0, x1, y0, y1 = s.view
        px, py = MAP_PADDING * (x1 - x0), MAP_PADDING * (y1 - y0)
        box = (x0 - px, x1 + px, y0 - py, y1 + py)
        xs, ys, values = s.grid(box, resolution=GRID)
        inside = values[np.ix_((xs >= x0) & (xs <= x1), (ys >= y0) & (ys <= y1))]
        finite = inside[np.isfinite(inside)]
        top = float(finite.max()) if finite.size else 1.0
        if s.log_colors:
            floor = max(float(np.percentile(finite, 0.5)), top * 1e-9, 1e-12)
            shown = np.log10(np.clip(values, floor, None))
            lo, hi = math.log10(floor), math.log10(top)
            label = "log₁₀ loss"
        else:
            shown = values
            lo, hi = float(finite.min()), top
            label = "loss"
        shown = np.where(np.isfinite(shown), shown, hi)
        levels = np.linspace(lo, hi, CONTOUR_LEVELS + 2)[1:-1]
        self.colorbar.axis.setLabel(label)
        self.image.setImage(np.minimum(shown, hi), levels=(lo, hi), autoLevels=False)
        self.image.setRect(QRectF(box[0], box[2], box[1] - box[0], box[3] - box[2]))
        self.colorbar.setLevels((lo, hi))
        segments = [contour_segments(shown, xs, ys, level) for level in levels]
        points = np.concatenate(segments) if segments else np.empty((0, 2))
        self.contours.setData(points[:, 0], points[:, 1], connect="pairs")
        self.minima_item.setData(pos=s.minima)
        item = self.map_plot.getPlotItem()
        item.setTitle(self._surface_title(), color="#222", size="11pt")
        # limits first: the previous surface's limits would clip the new range
        item.vb.setLimits(xMin=x0 - 2 * (x1 - x0), xMax=x1 + 2 * (x1 - x0),
                          yMin=y0 - 2 * (y1 - y0), yMax=y1 + 2 * (y1 - y0))
        item.vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        self._view_width = x1 - x0

    def _surface_title(self) -> str:
        s = self._surface
        params = ", ".join(f"{k.replace('_', ' ')} {v:g}" for k, v in s.params.items())
        return f"{s.title}" + (f"  ({params})" if params else "")

    def _make_racer_items(self) -> None:
        plot = self.map_plot.getPlotItem()
        for items in self._racer_items:
            for key in ("path", "marker", "arrow", "ellipse"):
                plot.removeItem(items[key])
            self.loss_plot.getPlotItem().removeItem(items["loss"])
        self.legend.clear()
        self._racer_items = []
        for index, racer in enumerate(self.arena.racers):
            color = QColor(self._specs[index].color or PALETTE[index % len(PALETTE)])
            path = pg.PlotDataItem(pen=pg.mkPen(color, width=2.2), antialias=True)
            path.setZValue(10 + index)
            marker = pg.ScatterPlotItem(size=13, brush=pg.mkBrush(color), pen=pg.mkPen("k", width=1.5))
            marker.setZValue(30 + index)
            arrow = pg.PlotDataItem(pen=pg.mkPen(color.darker(150), width=2.5), connect="pairs",
                                    antialias=True)
            arrow.setZValue(29)
            ellipse = pg.PlotDataItem(pen=pg.mkPen(color.darker(130), width=2), antialias=True)
            ellipse.setZValue(28)
            for it in (path, marker, arrow, ellipse):
                plot.addItem(it)
            loss = self.loss_plot.getPlotItem().plot(pen=pg.mkPen(color, width=2), name=racer.label)
            self._racer_items.append({"path": path, "marker": marker, "arrow": arrow,
                                      "ellipse": ellipse, "loss": loss})
        self.table.setRowCount(len(self.arena.racers))
        for row, racer in enumerate(self.arena.racers):
            swatch = QTableWidgetItem()
            swatch.setBackground(QColor(self._specs[row].color))
            self.table.setItem(row, 0, swatch)
            for col in range(1, len(COLUMNS)):
                cell = QTableWidgetItem()
                cell.setTextAlignment(Qt.AlignVCenter | (Qt.AlignLeft if col == 1 else Qt.AlignRight))
                self.table.setItem(row, col, cell)
            self.table.item(row, 1).setText(racer.label)
            self.table.item(row, 1).setToolTip(f"{optimizer_label(racer.optimizer.name)}, "
                                               f"learning rate {racer.optimizer.learning_rate:g}")
        # show every row without scrolling; the plots get the rest
        wanted = self.table.horizontalHeader().height() + 22 * len(self.arena.racers) + 8
        total = sum(self.picture.sizes())
        if total > 0:
            self.picture.setSizes([max(total - wanted, 300), wanted])
        self.map_caption.setText(
            "Click the map to move the start (the black ring labelled 'start'). Stars: minima. Arrows: the step "
            f"momentum alone would take next (×{ARROW_SCALE:g}). Ellipses: per-coordinate step "
            "size of adaptive optimizers (wide = bigger steps along x).")

    def _refresh(self) -> None:
        """Redraw paths, markers, arrows, ellipses, loss curves and the table."""
        if self.arena is None:
            return
        self.start_item.setData(pos=[self.arena.start])
        self.start_text.setPos(*self.arena.start)
        radius = ELLIPSE_FRACTION * getattr(self, "_view_width", 1.0)
        circle = np.linspace(0, 2 * np.pi, 49)
        rows = []
        # a diverging racer's loss would stretch the log axis over dozens of
        # decades and flatten every other curve: draw it up to a ceiling
        ceiling = LOSS_CEILING * max(max(float(r.losses[0]) for r in self.arena.racers), 1e-12)
        for row, (racer, items) in enumerate(zip(self.arena.racers, self._racer_items)):
            path = racer.path
            items["path"].setData(path[:, 0], path[:, 1])
            pos = path[-1]
            items["marker"].setData(pos=[pos])
            velocity = racer.velocity() if not racer.stopped else np.zeros(2)
            speed = float(np.linalg.norm(velocity))
            if self.velocity_check.isChecked() and speed > 0 and math.isfinite(speed):
                items["arrow"].setData(*_arrow(pos, velocity * ARROW_SCALE, radius * 0.5), connect="pairs")
            else:
                items["arrow"].setData([], [])
            gains = racer.gains()
            if (self.scale_check.isChecked() and racer.adaptive and gains is not None
                    and np.all(np.isfinite(gains)) and gains.max() > 0):
                axes = radius * np.abs(gains) / np.abs(gains).max()
                items["ellipse"].setData(pos[0] + axes[0] * np.cos(circle), pos[1] + axes[1] * np.sin(circle))
            else:
                items["ellipse"].setData([], [])
            losses = np.clip(racer.losses, LOSS_FLOOR, ceiling)
            items["loss"].setData(np.arange(losses.size), losses)
            rows.append((racer, gains, speed))
        self.step_label.setText(f"step {self.arena.steps}")
        # the table is the slowest thing to repaint: while running, a few
        # updates per second are plenty to read it
        now = time.monotonic()
        if not self.running or now - self._table_time >= TABLE_INTERVAL:
            self._table_time = now
            for row, (racer, gains, speed) in enumerate(rows):
                self._fill_row(row, racer, gains, speed)

    def _fill_row(self, row: int, racer, gains, speed: float) -> None:
        status = racer.stopped
        values = [racer.steps, racer.loss, racer.distance, racer.effective_step,
                  None if gains is None else float(gains[0]), None if gains is None else float(gains[1]),
                  speed, racer.steps_to_loss(FINISH_LOSS)]
        for col, value in enumerate(values, start=2):
            text = _fmt(value)
            if status and col == 3:
                text = status
            self.table.item(row, col).setText(text)


def _arrow(origin: np.ndarray, vector: np.ndarray, head: float):
    """Segments (x, y arrays for connect="pairs") of an arrow from origin
    along vector, with a head of size ``head`` (at most half the length)."""
    tip = origin + vector
    length = float(np.linalg.norm(vector))
    h = min(head, 0.5 * length)
    u = vector / length
    normal = np.array([-u[1], u[0]])
    left = tip - h * u + 0.5 * h * normal
    right = tip - h * u - 0.5 * h * normal
    pts = np.array([origin, tip, tip, left, tip, right])
    return pts[:, 0], pts[:, 1]
