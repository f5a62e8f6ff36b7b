"""Descent's window (PySide6 + pyqtgraph).

The window edits experiments and renders what the engine emits; it never
computes training math.  Modules, simplest first:

* :mod:`gui.display`        - can a window open at all? (checked before Qt starts)
* :mod:`gui.widgets.params` - editors built from the engine's ``Param`` specs, the one
                              stack of every tab (Train, Compare, arena)
* :mod:`gui.widgets.stepping` - how arrow keys move a number (one rule, Qt-free)
* :mod:`gui.records`        - per-run growing buffers filled from engine events
* :mod:`gui.panels`         - data, optimizer/schedule and training panels
* :mod:`gui.builder`        - the model builder (layer stack)
* :mod:`gui.worker`         - the training thread (events cross in batches)
* :mod:`gui.plots`          - the live plots
* :mod:`gui.runs`           - the run list
* :mod:`gui.coach_panel`    - the coach's findings about the shown run, with "try it"
* :mod:`gui.exporting`      - weights / plots / CSV export
* :mod:`gui.main_window`    - the window that ties them together
* :mod:`gui.app`            - ``main(argv)``
"""

from .compat import guard_none_refcount as _guard

_guard()  # PySide6 6.12 + Python 3.11 would otherwise abort within seconds (see gui/compat.py)
