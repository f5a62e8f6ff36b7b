"""Can Qt open a window here?  Checked *before* QApplication exists.

Without a display, or without the xcb libraries Qt's X11 plugin loads, Qt
aborts the process with a message that does not say what to install.  This
module finds those cases first and returns one readable explanation.
"""
from __future__ import annotations

import ctypes.util
import os
import re
import socket
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


def x_server_reachable(display: str, timeout: float = 1.0) -> bool:
    """Whether something accepts connections where DISPLAY points (unknown forms count as yes)."""
    match = re.fullmatch(r"(?:unix)?:(\d+)(?:\.\d+)?", display)
    if match:
        n = match.group(1)
        for address in (f"\0/tmp/.X11-unix/X{n}", f"/tmp/.X11-unix/X{n}"):   # abstract, then file socket
            try:
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                    sock.settimeout(timeout)
                    sock.connect(address)
                    return True
            except OSError:
                continue
        return False
    match = re.fullmatch(r"([\w.-]+):(\d+)(?:\.\d+)?", display)
    if match:
        try:
            with socket.create_connection((match.group(1), 6000 + int(match.group(2))), timeout=timeout):
                return True
        except OSError:
            return False
    return True


def display_problem(environ=None, platform: str | None = None, find=ctypes.util.find_library,
                    reachable=x_server_reachable) -> str | None:
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
    if not reachable(display):
        return (f"Descent cannot open its window: no X server answers on DISPLAY={display}.\n"
                + HEADLESS_HINT)
    missing = missing_xcb_packages(find)
    if missing:
        return ("Descent cannot open its window: Qt's X11 plugin needs system libraries that are "
                "not installed.\nInstall them with:\n    sudo apt-get install " + " ".join(missing)
                + "\n(or `make system-deps`).\n" + HEADLESS_HINT)
    return None
