"""The live time-series plots: the machinery every panel shares.

Panels 1-2 (loss, accuracy) are in :mod:`gui.metric_plots`, 3-6 (per layer) in
:mod:`gui.layer_plots`.

Every panel draws from :class:`gui.records.RunRecord` buffers on the
window's redraw timer (never per event): growing arrays, ``setData`` only for
runs whose ``version`` changed (epoch curves only when they grew),
``clipToView`` and peak downsampling on, thin pens.  Axes do not follow the
data every frame (regenerating tick labels is the dearest part of a
repaint): :class:`Follow` moves a view only when the data leave it, in round
steps, until the user zooms or pans (the "A" button resumes following).
All time plots use optimizer steps on x; the loss plot also has an epoch
axis on top.  They are not x-linked on purpose: pyqtgraph aligns linked
views by screen position, which shifts ranges between plots whose axes
differ in width.

Per-layer plots: colour = layer, always (a categorical palette in which
layer 1 and layer 2 never look alike; the key above the plot names them,
counted from 1).  Several runs checked: line style = run, the focus run
solid and the others dashed, dotted, ... and fainter.  Loss and accuracy,
which have no layers: colour = run.  Keys (legends) sit above the plot, in
the panel's key line, never over the data.  Autoscaling ignores non-finite
values, a run whose values are orders of magnitude beyond the others' and
isolated spikes; what is off the scale (or not a number) shows as a small
triangle at the top edge, so a plot is never silently blank.  A diverged
run gets a red marker at the step it diverged.
"""
from __future__ import annotations

import html
import math
import time
from functools import lru_cache

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (QFrame, QGraphicsItem, QGraphicsScene, QHBoxLayout, QLabel, QSizePolicy,
                               QVBoxLayout)

pg.setConfigOptions(antialias=False, background="w", foreground="#222", imageAxisOrder="row-major")

RUN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
              "#7f7f7f", "#bcbd22"]
TRAIN_COLOR, VAL_COLOR = "#1f77b4", "#ff7f0e"
DIVERGED_COLOR = "#d00000"
PHASE_COLOR = "#6a3d9a"
_LAYER_MAP = pg.colormap.get("plasma")
# layer 1, 2, 3, ...: neighbours differ in hue and lightness (blue, red, green, purple, orange, ...)
LAYER_PALETTE = ["#1f5fbf", "#d62728", "#2ca02c", "#8e44ad", "#ff7f0e", "#17becf", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22"]
RUN_STYLES = [Qt.DashLine, Qt.DotLine, Qt.DashDotLine, Qt.DashDotDotLine]   # the runs beside the focus run
STYLE_GLYPHS = {Qt.SolidLine: "━━", Qt.DashLine: "╍╍", Qt.DotLine: "┅┅", Qt.DashDotLine: "━·",
                Qt.DashDotDotLine: "━‥"}
FADED_ALPHA = 150        # the other runs' lines, beside the focus run's opaque ones
OFFSCALE_COLOR = "#d00000"
OUTLIER_FACTOR = 20.0    # a curve this many times larger than the median curve does not set the scale
SPIKE_FACTOR = 3.0       # within a curve: beyond the 1st-99th percentile span by 3 spans is a spike
BAND_POINTS = 1500        # mean +/- std bands are thinned to this many points


def run_color(index: int) -> str:
    return RUN_COLORS[index % len(RUN_COLORS)]


@lru_cache(maxsize=256)
def layer_colors(n: int, base: str | None = None) -> tuple:
    """Colour of layer 1..n (index 0..n-1): categorical up to 10 layers, a gradient beyond.
    ``base`` is accepted for old callers and ignored: colour is the layer, never the run."""
    if n <= len(LAYER_PALETTE):
        return tuple(QColor(c) for c in LAYER_PALETTE[:n])
    return tuple(_LAYER_MAP.map(0.05 + 0.8 * i / max(1, n - 1), mode="qcolor") for i in range(n))


def run_style(records: list, focus, record) -> tuple:
    """(line style, alpha) of ``record`` among the shown runs: the focus run solid and opaque,
    the others dashed, dotted, ... in run order, and fainter."""
    if len(records) <= 1 or focus is None or record.run_id == focus.run_id:
        return Qt.SolidLine, 255
    others = [r.run_id for r in records if focus is None or r.run_id != focus.run_id]
    return RUN_STYLES[others.index(record.run_id) % len(RUN_STYLES)], FADED_ALPHA


def faded(color, alpha: int) -> QColor:
    c = QColor(color)
    c.setAlpha(alpha)
    return c


def nonfinite_x(x, y) -> np.ndarray:
    """Steps whose value is NaN or infinite (drawn as markers at the top edge)."""
    y = np.asarray(y, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    n = min(len(x), len(y))
    return x[:n][~np.isfinite(y[:n])]


def mark_bad(item, x, raw) -> None:
    """Remember where ``item``'s raw data are not finite (before any log or positive() mapping).
    The curves are append-only and redrawn every frame: only the new tail is examined."""
    n = min(len(x), len(raw))
    done = getattr(item, "_descent_checked", 0)
    if n < done or not hasattr(item, "_descent_bad"):   # a new or shorter curve: start over
        item._descent_bad, done = np.empty(0), 0
    if n > done:
        tail = nonfinite_x(x[done:n], raw[done:n])
        if len(tail):
            item._descent_bad = np.concatenate([item._descent_bad, tail])
    item._descent_checked = n


def positive(values: np.ndarray) -> np.ndarray:
    """Non-positive values -> NaN (for log axes)."""
    out = np.array(values, dtype=np.float64, copy=True)
    out[~(out > 0)] = np.nan
    return out


def nice_ceiling(value: float) -> float:
    """The next of 1, 1.5, 2, 3, 4, 5, 6, 8 x 10^k at or above ``value``."""
    if not value > 0:
        return 1.0
    exponent = math.floor(math.log10(value))
    for m in (1, 1.5, 2, 3, 4, 5, 6, 8, 10):
        if m * 10 ** exponent >= value * (1 - 1e-9):
            return m * 10 ** exponent
    return 10 ** (exponent + 1)


def setup_plot(item: pg.PlotItem, x_label: str, y_label: str, log_y: bool = False) -> None:
    """Labels, clipping/downsampling, small tick font, no SI prefixes; axes are cached as
    pixmaps (redrawn only when their range changes, not with every curve update)."""
    item.setLabel("bottom", x_label)
    item.setLabel("left", y_label)
    item.setClipToView(True)
    item.setDownsampling(auto=True, mode="peak")
    item.setLogMode(y=log_y)
    font = QFont()
    font.setPointSize(8)
    for axis in ("bottom", "left", "top"):
        ax = item.getAxis(axis)
        ax.setTickFont(font)
        ax.enableAutoSIPrefix(False)
        ax.setCacheMode(QGraphicsItem.DeviceCoordinateCache)


class LogAxis(pg.AxisItem):
    """Plain log-scale labels, only at 1, 2 and 5 times a power of ten (no crowded minor labels)."""

    def logTickStrings(self, values, scale, spacing):
        out = []
        for v in values:
            x = 10.0 ** float(v) * scale
            if not math.isfinite(x) or x <= 0:
                out.append("")
                continue
            exponent = math.floor(math.log10(x) + 1e-9)
            mantissa = round(x / 10.0 ** exponent, 3)
            if mantissa not in (1.0, 2.0, 5.0):
                out.append("")
            elif -3 <= exponent <= 3:
                out.append(f"{x:.{max(0, -exponent)}f}")
            else:
                out.append(f"{mantissa:g}e{exponent}")
        return out


class EpochAxis(pg.AxisItem):
    """A top axis in epochs for an x axis in steps (ticks at round epochs)."""

    def __init__(self):
        super().__init__("top")
        self.steps_per_epoch = 1.0

    def tickValues(self, minVal, maxVal, size):
        s = self.steps_per_epoch
        levels = super().tickValues(minVal / s, maxVal / s, size)
        return [(spacing * s, [v * s for v in values]) for spacing, values in levels]

    def tickStrings(self, values, scale, spacing):
        s = self.steps_per_epoch
        return super().tickStrings([v / s for v in values], scale, spacing / s)


def add_legend(plot: pg.PlotItem, offset=(-4, 4)) -> pg.LegendItem:
    legend = plot.addLegend(offset=offset, labelTextSize="8pt", verSpacing=-6, brush=pg.mkBrush(255, 255, 255, 210),
                            pen=pg.mkPen("#ccc"))
    legend.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
    return legend


class KeyLabel:
    """One entry's text (``.text`` / ``.setText``, as a pyqtgraph legend label has)."""

    def __init__(self, key: "Key", text: str):
        self.key, self.text = key, text

    def setText(self, text: str) -> None:
        if text != self.text:
            self.text = text
            self.key.render()


class KeySample:
    def __init__(self, item):
        self.item = item


class Key:
    """A plot's legend, drawn as one wrapped line of coloured samples *above* the plot: a legend
    inside a small plot covered 30-40% of its data.  ``items`` lists (sample, label) pairs like
    pyqtgraph's LegendItem (``sample.item`` is the curve, ``label.text`` its name)."""

    def __init__(self, label: QLabel):
        self.label = label
        self.items: list[tuple[KeySample, KeyLabel]] = []
        self._glyphs: list[tuple[str, str]] = []   # (colour, glyph) of each entry
        self._signature = None

    def set_entries(self, entries: list) -> None:
        """``entries``: (item or None, text, colour, line style, alpha[, short]); redrawn only when
        they change.  ``short`` is what the line shows when space is scarce (the tooltip and
        ``items`` keep ``text``); a ``None`` style draws a square: a colour, not a line."""
        entries = [tuple(e) + (None,) * (6 - len(e)) for e in entries]
        signature = tuple((id(item), text, QColor(color).name(), None if style is None else
                           int(style.value if hasattr(style, "value") else style), alpha, short)
                          for item, text, color, style, alpha, short in entries)
        if signature == self._signature:
            return
        self._signature = signature
        self.items = [(KeySample(item), KeyLabel(self, text)) for item, text, *_ in entries]
        self._glyphs = [(faded(color, alpha).name(QColor.HexArgb) if alpha < 255 else QColor(color).name(),
                         "■" if style is None else STYLE_GLYPHS.get(style, "━━"), short)
                        for _, _, color, style, alpha, short in entries]
        self.render()

    def clear(self) -> None:
        self.set_entries([])

    def render(self) -> None:
        parts = []
        for (_, label), (color, glyph, short) in zip(self.items, self._glyphs):
            rgb = "#" + color[-6:]
            text = html.escape(short if short is not None else label.text).replace(" ", "&nbsp;")   # wraps whole
            parts.append(f"<span style='color:{rgb}'><b>{glyph}</b></span>&nbsp;{text}")
        self.label.setText("&nbsp;&nbsp; ".join(parts))
        self.label.setToolTip("\n".join(label.text for _, label in self.items))
        self.label.setVisible(bool(parts))

    def isVisible(self) -> bool:
        return self.label.isVisibleTo(self.label.parentWidget()) if self.label.parentWidget() else bool(self.items)

    def setVisible(self, visible: bool) -> None:
        self.label.setVisible(visible and bool(self.items))


SYMBOL_POINTS = 60   # epoch curves drop their markers beyond this many epochs (markers are dear)


class LightCurve(pg.PlotCurveItem):
    """A per-layer curve: a bare PlotCurveItem (these curves hold hundreds of
    points, so PlotDataItem's clipping and downsampling machinery only costs
    time on every setData), with dots while it has too few points for a line.
    On a log-y plot the caller's values are stored as log10 (PlotCurveItem has
    no log mode of its own)."""

    def __init__(self, pen, name, log: bool):
        super().__init__(pen=pen, name=name, connect="finite")
        self.log = log
        self.dots = None
        self.mark_nonfinite = True   # False where NaN means "does not apply" (dead units of a tanh layer)

    def set_points(self, x, y) -> None:
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self.mark_nonfinite:
            mark_bad(self, x, y)
        if self.log:
            with np.errstate(divide="ignore", invalid="ignore"):
                y = np.where(y > 0, np.log10(y), np.nan)
        self.setData(x, y)
        if len(x) < 3:
            finite = np.isfinite(y)
            if self.dots is None:
                self.dots = pg.ScatterPlotItem(size=5, pen=None, brush=self.opts["pen"].color())
                self.dots.setParentItem(self)
            self.dots.setData(x[finite], y[finite])
            self.dots.setVisible(bool(finite.any()))
        elif self.dots is not None and self.dots.isVisible():
            self.dots.setVisible(False)   # hidden items cost nothing per frame


def set_if_grown(item: pg.PlotDataItem, x, y, raw=None) -> None:
    """setData only when the (append-only) data grew: epoch curves change once an epoch.
    ``raw``: the values before a mapping such as :func:`positive` (their NaNs get markers)."""
    n = len(x)
    if getattr(item, "_descent_n", -1) != n:
        item._descent_n = n
        if raw is not None:
            mark_bad(item, x, raw)
        if n > SYMBOL_POINTS and item.opts.get("symbol") is not None:
            item.setSymbol(None)
        item.setData(x, y)


class Follow:
    """Keeps a view around its data without moving the axes on every frame.

    The x range grows to round numbers of steps (1, 2, 5 x 10^k) as the run
    advances; the y range expands with some headroom when the data leave it
    and shrinks when they use less than a third of it.  A manual zoom or pan
    stops the following; the plot's "A" button resumes it.
    """

    def __init__(self, plot: pg.PlotItem, y_fixed: tuple | None = None, y_from_zero: bool = False,
                 y_limits: tuple | None = None):
        self.plot, self.vb = plot, plot.getViewBox()
        self.y_fixed = y_fixed
        self.y_limits = y_limits
        self.y_from_zero = y_from_zero
        self.x_cap = 0
        self.following = True
        self.vb.disableAutoRange()
        self.vb.sigRangeChangedManually.connect(self._manual)
        if plot.autoBtn is not None:
            plot.autoBtn.clicked.connect(self.follow)
        if y_fixed is not None or y_limits is not None:
            self.vb.setYRange(*(y_fixed or y_limits), padding=0)
        self.vb.setXRange(0, 100, padding=0)

    def _manual(self, *_args) -> None:
        self.following = False

    def follow(self) -> None:
        self.following = True
        self.vb.disableAutoRange()
        self.vb.setXRange(0, 100, padding=0)
        self.update(force=True)

    @staticmethod
    def _item_bounds(item, log: bool):
        """(x max, y low, y high) of an item's data: non-finite values ignored, and isolated
        spikes too (values beyond the 1st-99th percentile span by SPIKE_FACTOR spans: one
        blown-up step must not flatten every curve).  The percentiles are taken on at most
        ~4000 evenly spaced points, again only when the data grew by a quarter; in between, the
        new tail is filtered with the last ones (the curves are append-only, drawn every frame)."""
        x, y = item.xData, item.yData
        n = len(x)
        cache = getattr(item, "_descent_bounds", None)
        if cache is not None and cache["log"] == log and cache["n"] == n:
            return cache["x_hi"], cache["y_lo"], cache["y_hi"]
        if cache is not None and cache["log"] == log and cache["full"] <= n < 1.25 * cache["full"] + 50 \
                and n > cache["n"]:
            tail = Follow._values(y[cache["n"]:], log, item)
            tail = tail[(tail >= cache["keep"][0]) & (tail <= cache["keep"][1])]
            xs = np.asarray(x[cache["n"]:], dtype=np.float64)
            xs = xs[np.isfinite(xs)]
            cache.update(n=n, x_hi=max(cache["x_hi"], float(xs.max()) if len(xs) else -math.inf))
            if len(tail):
                cache.update(y_lo=min(cache["y_lo"], float(tail.min())), y_hi=max(cache["y_hi"], float(tail.max())))
            return cache["x_hi"], cache["y_lo"], cache["y_hi"]
        values = np.asarray(y, dtype=np.float64)
        if len(values) > 4000:
            values = values[np.linspace(0, len(values) - 1, 4000).astype(int)]
        values = Follow._values(values, log, item)
        xs = np.asarray(x, dtype=np.float64)
        xs = xs[np.isfinite(xs)]
        keep = (-math.inf, math.inf)
        if len(values) >= 20:
            q1, q99 = np.percentile(values, [1, 99])
            reach = SPIKE_FACTOR * max(q99 - q1, 1e-12 * max(1.0, abs(q99)))
            keep = (q1 - reach, q99 + reach)
            values = values[(values >= keep[0]) & (values <= keep[1])]
        y_lo, y_hi = (float(values.min()), float(values.max())) if len(values) else (math.inf, -math.inf)
        item._descent_bounds = {"n": n, "full": n, "log": log, "keep": keep, "x_hi": float(xs.max()) if len(xs)
                                else -math.inf, "y_lo": y_lo, "y_hi": y_hi}
        return item._descent_bounds["x_hi"], y_lo, y_hi

    @staticmethod
    def _values(y, log: bool, item) -> np.ndarray:
        """Finite values as the view sees them (log10 on a log axis; LightCurves hold log10 already)."""
        values = np.asarray(y, dtype=np.float64)
        if log and not isinstance(item, LightCurve):
            with np.errstate(divide="ignore", invalid="ignore"):
                values = np.log10(values)
        return values[np.isfinite(values)]

    def _bounds(self, extra=()):
        log = self.plot.getAxis("left").logMode
        x_hi, runs = -math.inf, {}
        for item in self.plot.listDataItems():
            if getattr(item, "_descent_marker", False) or item.xData is None or not len(item.xData) \
                    or not item.isVisible():
                continue
            ix, ilo, ihi = self._item_bounds(item, log)
            x_hi = max(x_hi, ix)
            if ilo <= ihi:
                lo, hi = runs.get(getattr(item, "_descent_run", id(item)), (math.inf, -math.inf))
                runs[getattr(item, "_descent_run", id(item))] = (min(lo, ilo), max(hi, ihi))
        found = list(runs.values())
        if not log and len(found) >= 2:
            # a run orders of magnitude beyond the others (blown up) does not set the scale: the
            # others would be flat lines; its values show as markers at the top edge
            sizes = [max(abs(lo), abs(hi)) for lo, hi in found]
            keep = [b for i, (b, size) in enumerate(zip(found, sizes))
                    if not size > OUTLIER_FACTOR * float(np.median(sizes[:i] + sizes[i + 1:]))]
            found = keep or found
        y_lo = min((lo for lo, _ in found), default=math.inf)
        y_hi = max((hi for _, hi in found), default=-math.inf)
        for bx, blo, bhi in extra:
            x_hi, y_lo, y_hi = max(x_hi, bx), min(y_lo, blo), max(y_hi, bhi)
        if not (y_lo <= y_hi):   # only x extents (markers): no y information
            y_lo = y_hi = math.nan
        return x_hi, y_lo, y_hi

    def update(self, force: bool = False, extra=()) -> None:
        if not self.following:
            return
        x_hi, y_lo, y_hi = self._bounds(extra)
        if not math.isfinite(x_hi):
            return
        (cx0, cx1), (cy0, cy1) = self.vb.viewRange()
        target = nice_ceiling(max(x_hi * 1.3, 10))   # headroom: the axes change every ~30% of growth
        if self.x_cap >= x_hi:           # never beyond the planned end of the shown runs
            target = min(target, self.x_cap)
        if force or x_hi > cx1 or target < cx1 / 3 or (target < cx1 and target == self.x_cap):
            self.vb.setXRange(0, target, padding=0)
        if self.y_fixed is not None or not (math.isfinite(y_lo) and math.isfinite(y_hi)):
            return
        if self.y_from_zero:
            y_lo = min(0.0, y_lo)
        span = y_hi - y_lo
        if span <= 1e-12 * max(1.0, abs(y_hi)):   # constant data: a band around it
            span = abs(y_hi) if y_hi else 1.0
            y_lo, y_hi = y_lo - span / 2, y_hi + span / 2
        if force or y_lo < cy0 or y_hi > cy1 or span < (cy1 - cy0) / 3:
            margin = 0.25 * span
            lo, hi = y_lo - (0 if self.y_from_zero else margin), y_hi + margin
            if self.y_limits is not None:
                lo, hi = max(lo, self.y_limits[0]), min(hi, self.y_limits[1])
            self.vb.setYRange(lo, hi, padding=0)


class PlotPanel(QFrame):
    """A titled plot (or layout of plots) with a help tooltip and an optional note line."""

    def __init__(self, title: str, help_text: str, parent=None, plot_widget=None):
        super().__init__(parent)
        self.setFrameShape(QFrame.StyledPanel)
        self.title = QLabel(f"<b>{title}</b>")
        self.title.setToolTip(help_text)
        self.title.setMinimumWidth(40)
        self.title.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.help = QLabel("?")
        self.help.setToolTip(help_text)
        self.help.setAlignment(Qt.AlignCenter)
        self.help.setFixedSize(15, 15)
        self.help.setStyleSheet("QLabel { color: white; background: #5b7fb8; border-radius: 7px; "
                                "font-weight: bold; font-size: 8pt; }")
        self.header = QHBoxLayout()
        self.header.setContentsMargins(4, 2, 4, 0)
        self.header.addWidget(self.title, 1)
        self.header.addWidget(self.help)
        self.note = QLabel()
        self.note.setStyleSheet("color: #666; padding-left: 4px;")
        self.note.setWordWrap(True)   # read whole (the dashboard's FlatGrid ignores height-for-width)
        self.note.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        self.note.hide()
        self.keyline = QLabel()   # the legend: above the plot, never over its data
        self.keyline.setTextFormat(Qt.RichText)
        self.keyline.setWordWrap(True)
        self.keyline.setStyleSheet("font-size: 8pt; padding-left: 4px;")
        self.keyline.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Minimum)
        self.keyline.hide()
        self.legend = Key(self.keyline)
        self.widget = plot_widget if plot_widget is not None else pg.PlotWidget(axisItems={"left": LogAxis("left")})
        if isinstance(self.widget, pg.GraphicsView):
            # curves change shape on every frame: keeping a BSP index of them costs more than it saves
            self.widget.scene().setItemIndexMethod(QGraphicsScene.ItemIndexMethod.NoIndex)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 1, 1, 1)
        layout.setSpacing(0)
        layout.addLayout(self.header)
        layout.addWidget(self.note)
        layout.addWidget(self.keyline)
        layout.addWidget(self.widget, 1)
        self.setMinimumSize(250, 190)   # below this the grid scrolls (see MainWindow.dashboard_area)
        self.shown: list = []
        self.focus = None
        self.offscale: dict = {}   # plot -> its marker item for off-scale and non-finite values
        self._sig = None
        self._versions: dict[int, int] = {}
        self.items: dict[tuple, object] = {}
        self.follows: list[Follow] = []

    def set_note(self, text: str) -> None:
        if text != self.note.text():
            self.note.setText(text)
            self.note.setToolTip(text)
            self.note.setVisible(bool(text))

    # -- incremental drawing -------------------------------------------------------------------

    max_rate = None   # redraws per second at most (None: every tick of the window's timer)
    pending = False   # a rate-limited tick left a change undrawn

    def sync(self, records: list, multi: bool, focus, force: bool = True) -> None:
        """Redraw the runs in ``records`` whose data changed since the last call
        (``force=False``: a panel with ``max_rate`` may leave it to a later tick)."""
        self.shown, self.focus = list(records), focus
        focus_id = focus.run_id if (multi and focus is not None) else None   # the focus run is drawn solid
        sig = (tuple(r.run_id for r in records), multi, focus_id, self.mode_key())
        if sig != self._sig:
            self.reset()
            self._sig = sig
        elif not force and self.max_rate and time.monotonic() - getattr(self, "_drawn_at", 0.0) < 1.0 / self.max_rate:
            self.pending = True   # drawn recently: a later tick picks the change up
            return
        self.pending = False
        self._drawn_at = time.monotonic()
        changed = False
        for record in records:
            version = self.version_of(record)
            if self._versions.get(record.run_id) == version:
                continue
            self._versions[record.run_id] = version
            self.draw(record, multi, record.color if multi else None)
            self.phase_markers(record)
            changed = True
        self.after_sync(records, multi, focus, changed)
        if changed or not records:
            self.legend.set_entries(self.key_entries(records, multi, focus))
        if changed:
            cap = max((r.total_steps for r in records), default=0)
            diverged = [(float(r.diverged_step), math.inf, -math.inf) for r in records if r.diverged_step]
            for follow in self.follows:
                follow.x_cap = cap
                follow.update(extra=self.extra_bounds(follow) + diverged)
                self.mark_offscale(follow)
        else:
            for follow in self.follows:
                if getattr(follow, "_marks_pending", False):
                    self.mark_offscale(follow)

    def key_entries(self, records, multi, focus) -> list:
        """The key's entries: (item, text, colour, line style, alpha) (none by default)."""
        return []

    def style_of(self, record) -> tuple:
        """(line style, alpha) of a run's lines: see :func:`run_style`."""
        return run_style(self.shown, self.focus, record)

    OFFSCALE_SECONDS = 0.5   # markers are found over every point: a few times a second is enough

    def mark_offscale(self, follow: "Follow", force: bool = False) -> None:
        """Triangles at the top edge of ``follow``'s plot where a curve is not finite or above
        the view (a diverged run's NaNs, a spike the autoscale ignored): never a silently
        blank plot.  Also called when the user zooms or pans, and when a run ends."""
        now = time.monotonic()
        last = getattr(follow, "_marked_at", -math.inf)
        if not force and now - last < self.OFFSCALE_SECONDS and any(not r.finished for r in self.shown):
            follow._marks_pending = self.pending = True   # the dashboard calls again on a later tick
            return
        follow._marked_at, follow._marks_pending = now, False
        plot = follow.plot
        log = plot.getAxis("left").logMode
        (x0, x1), (y0, y1) = follow.vb.viewRange()
        xs, colors = [], []
        for item in plot.listDataItems():
            if getattr(item, "_descent_marker", False) or item.xData is None or not len(item.xData) \
                    or not item.isVisible():
                continue
            x = np.asarray(item.xData, dtype=np.float64)
            y = np.asarray(item.yData, dtype=np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                if log and not isinstance(item, LightCurve):   # the view is in log10; LightCurves too
                    y = np.log10(y)
                above = x[np.isfinite(y) & (y > y1)]
            bad = getattr(item, "_descent_bad", None)
            out = above if bad is None or not len(bad) else np.concatenate([above, bad])
            if len(out):
                out = np.unique(out)
                if len(out) > 200:
                    out = out[np.linspace(0, len(out) - 1, 200).astype(int)]
                xs.append(out)
                pen = item.opts.get("pen")
                colors += [pg.mkPen(pen).color() if pen is not None else QColor(OFFSCALE_COLOR)] * len(out)
        marker = self.offscale.get(id(plot))
        if not xs:
            if marker is not None and marker.isVisible():
                marker.setVisible(False)
            return
        if marker is None:
            marker = pg.ScatterPlotItem(symbol="t", size=8, pen=pg.mkPen(OFFSCALE_COLOR, width=1))
            marker.setZValue(20)
            marker._descent_marker = True
            marker.setToolTip("▼ at the top edge: values above the scale, or not a number (NaN/inf)")
            plot.addItem(marker)
            self.offscale[id(plot)] = marker
            follow.vb.sigRangeChangedManually.connect(lambda *_: self.mark_offscale(follow, force=True))
        x = np.concatenate(xs)
        y = np.full(len(x), y1 - 0.03 * (y1 - y0))
        marker.setData(x, y, brush=[pg.mkBrush(c) for c in colors])
        marker.setVisible(True)

    def mode_key(self):
        return None

    def version_of(self, record):
        """What this panel draws changed when this changed (per-layer panels: new diagnostics)."""
        return record.step_version

    def extra_bounds(self, follow: Follow) -> list:
        return []

    def reset(self) -> None:
        for marker in self.offscale.values():
            marker.setVisible(False)
        plots = [follow.plot for follow in self.follows]
        for item in self.items.values():
            for plot in plots:   # PlotItem.removeItem also forgets data items and legend entries
                if item in plot.items:
                    plot.removeItem(item)
                    break
            else:
                if item.scene() is not None:
                    item.scene().removeItem(item)
        self.items = {}
        self._versions = {}
        self.legend.clear()
        for follow in self.follows:
            if follow.following:
                follow.vb.setXRange(0, 100, padding=0)

    def legends(self) -> list:
        return [self.legend]

    def draw(self, record, multi: bool, color) -> None:
        """Draw ``record``'s curves (``color``: the run's, when several runs are overlaid).
        Nothing by default: a panel that overrides ``sync`` (the predictions) has no curves."""

    def after_sync(self, records, multi, focus, changed) -> None:
        pass

    def light(self, plot: pg.PlotItem, key: tuple, name: str | None, color, width: float = 1,
              style=Qt.SolidLine) -> LightCurve:
        """The LightCurve for ``key``, created the first time."""
        item = self.items.get(key)
        if item is None:
            item = LightCurve(pg.mkPen(color, width=width, style=style), name, plot.getAxis("left").logMode)
            item._descent_run = key[0]
            plot.addItem(item)
            self.items[key] = item
        return item

    def curve(self, plot: pg.PlotItem, key: tuple, name: str | None, color, width: float = 1,
              style=Qt.SolidLine, symbol=None) -> pg.PlotDataItem:
        """The item for ``key``, created (with its pen) the first time."""
        item = self.items.get(key)
        if item is None:
            pen = pg.mkPen(color, width=width, style=style)
            item = pg.PlotDataItem(pen=pen, symbol=symbol, symbolSize=5, symbolPen=None,
                                   symbolBrush=QColor(color) if symbol else None, connect="finite", name=name)
            item._descent_run = key[0]
            plot.addItem(item)
            self.items[key] = item
        return item

    label_phases = False   # the loss and accuracy plots name the phases; the rest only draw the lines

    def phase_markers(self, record) -> None:
        """A dotted line where each later phase of a staged run starts (e.g. frozen | unfrozen),
        on every plot of the panel."""
        for i in range(1, len(record.phases)):
            step, name = record.phases[i]
            for follow in self.follows:
                key = (record.run_id, "phase", i, id(follow.plot))
                if key in self.items:
                    continue
                text = f"{record.phases[i - 1][1]} | {name}" if self.label_phases else None
                line = pg.InfiniteLine(pos=step, angle=90, pen=pg.mkPen(PHASE_COLOR, width=1.5, style=Qt.DotLine),
                                       label=text, labelOpts={"color": PHASE_COLOR, "position": 0.93,
                                                              "fill": (255, 255, 255, 220)})
                line.setToolTip(f"step {step:,}: phase '{name}' starts (new optimizer, layers frozen or "
                                "unfrozen as the experiment says)")
                follow.plot.addItem(line)
                self.items[key] = line

    def diverged_marker(self, plot: pg.PlotItem, record, label: bool = False) -> None:
        key = (record.run_id, "diverged", id(plot))
        if record.diverged_step is None or key in self.items:
            return
        line = pg.InfiniteLine(pos=record.diverged_step, angle=90,
                               pen=pg.mkPen(DIVERGED_COLOR, width=2, style=Qt.DashLine),
                               label=f"diverged at step {record.diverged_step}" if label else None,
                               labelOpts={"color": DIVERGED_COLOR, "position": 0.12, "fill": (255, 255, 255, 220), "anchors": [(1, 0), (1, 0)]})
        plot.addItem(line)
        self.items[key] = line
