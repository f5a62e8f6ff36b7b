"""``python main.py [--preset NAME_OR_PATH]``: open Descent's window.

A small launch window (:mod:`gui.launch`) shows first, before NumPy, Numba
and the engine are imported, and says what happens meanwhile: on the first
launch after an install, the one-time compilation of the kernels, group by
group (also printed on the terminal).  The main window replaces it once the
engine is ready."""
from __future__ import annotations

import argparse
import os
import sys


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python main.py", description="Open Descent's window.")
    parser.add_argument("--preset", metavar="NAME_OR_PATH",
                        help="experiment to load: a preset name (python main.py presets) or a JSON file")
    parser.add_argument("--runs", metavar="DIR", default="runs", help="folder for run folders (default: runs)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    experiment = None
    if args.preset:
        from engine.errors import DescentError
        from engine.spec.experiment import load_experiment

        try:
            experiment = load_experiment(args.preset)
        except DescentError as exc:
            print(f"descent: {exc}", file=sys.stderr)
            return 2
    from .display import display_problem

    problem = display_problem()   # before QApplication: Qt would abort with a less helpful message
    if problem:
        print(problem, file=sys.stderr)
        return 2

    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setApplicationName("Descent")
    app.setOrganizationName("Descent")
    from .launch import LaunchWindow, start_loading

    launch = LaunchWindow()
    launch.show()
    windows = []

    def open_main_window(ok: bool) -> None:
        if not ok:
            print("descent: opening the window anyway; the kernels compile on the first Train", file=sys.stderr)
        from .main_window import MainWindow

        window = MainWindow(experiment, run_root=args.runs)
        if args.preset:
            window._show_header(source=args.preset)
        window.show()
        windows.append(window)
        launch.close()

    launch.loaded.connect(open_main_window)
    start_loading(launch)
    code = app.exec()
    if launch.thread is not None and launch.thread.isRunning():   # quit while compiling: Qt would abort
        os._exit(code)
    return code
