"""Descent: a desktop playground for training deep neural networks.

    python main.py                      open the window with the default experiment
    python main.py --preset NAME|PATH   open the window with that experiment
    python main.py run NAME|PATH ...    train headless (see: python main.py run -h)
    python main.py presets              list the shipped experiments
"""
import sys


def main(argv: list[str]) -> int:
    if argv and argv[0] not in ("--preset",) and not argv[0].startswith("--preset="):
        try:   # Ctrl-C while the engine loads (NumPy, Numba): one line, no traceback
            from engine.cli import COMMANDS, main as cli_main

            if argv[0] in COMMANDS or argv[0] in ("-h", "--help", "--version"):
                return cli_main(argv)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
    from gui.app import main as gui_main  # only the window needs Qt

    return gui_main(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
