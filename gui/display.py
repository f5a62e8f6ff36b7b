"""Can Qt open a window here?  Checked *before* QApplication exists.

Without a display, or without the xcb libraries Qt's X11 plugin loads, Qt
aborts the process with a message that does not say what to install.  This
module finds those cases first and returns one readable explanation.
"""
from __future__ import annotations

import ctypes.util
import os
import re
import sys

# library (for ctypes.util.find_library) -> Debian package that ships it
XCB_LIBRARIES = {
    "xcb-cursor": "libxcb-cursor0",
    "xcb-icccm": "libxcb-icccm4",
    "xcb-keysyms": "libxcb-keysyms1",
    "xcb-image": "libxcb-image0",
    "xcb-randr": "libxcb-randr0",
    "xcb-render-util": "libxcb-render-util0",
    "xcb-shape": "libxcb-shape0",
    "xcb-xkb": "libxcb-xkb1",
    "xkbcommon-x11": "libxkbcommon-x11-0",
}

HEADLESS_PLATFORMS = ("offscreen", "minimal", "vnc", "eglfs", "linuxfb", "vkkhrdisplay")

HEADLESS_HINT = ("To train without a window: python main.py run NAME_OR_PATH "
                 "(python main.py presets lists the shipped experiments).\n"
                 "To open the window on a machine without a screen: xvfb-run -a python main.py")


def missing_xcb_packages(find=ctypes.util.find_library) -> list[str]:
    """Debian packages of the xcb libraries Qt's X11 plugin needs but cannot find."""
    return [package for lib, package in XCB_LIBRARIES.items() if find(lib) is None]


def display_problem(environ=None, platform: str | None = None, find=ctypes.util.find_library) -> str | None:
    """None if a window can probably open, else a message saying why not and what to do."""
    env = os.environ if environ is None else environ
    platform = sys.platform if platform is None else platform
    qpa = env.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
    if qpa in HEADLESS_PLATFORMS or not platform.startswith("linux"):
        return None
    display, wayland = env.get("DISPLAY", ""), env.get("WAYLAND_DISPLAY", "")
    if not display and not wayland:
        return ("Descent cannot open its window: no display is available (neither DISPLAY nor "
                "WAYLAND_DISPLAY is set).\n" + HEADLESS_HINT)
    if qpa.startswith("wayland") or (wayland and not display):
        return None
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if match and os.path.isdir("/tmp/.X11-unix") and not os.path.exists(f"/tmp/.X11-unix/X{match.group(1)}"):
        return (f"Descent cannot open its window: no X server is listening on DISPLAY={display}.\n"
                + HEADLESS_HINT)
    missing = missing_xcb_packages(find)
    if missing:
        return ("Descent cannot open its window: Qt's X11 plugin needs system libraries that are "
                "not installed.\nInstall them with:\n    sudo apt-get install " + " ".join(missing)
                + "\n(or `make system-deps`).\n" + HEADLESS_HINT)
    return None
