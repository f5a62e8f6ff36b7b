"""Errors a user can act on.

Every problem caused by input (an experiment file, a data file, a weights file,
a path) is raised as a :class:`DescentError` subclass whose message names what
is wrong and what is allowed.  The CLI prints the message alone and exits with
status 2; the window shows it in a dialog.  Anything else is a bug.
"""
from __future__ import annotations

import difflib


class DescentError(ValueError):
    """Base class: a problem with the user's input, explained in one message."""


class ExperimentError(DescentError):
    """An experiment file or dictionary does not match the schema."""


class DataError(DescentError):
    """A data set cannot be found, read, or used for the requested task."""


class WeightsError(DescentError):
    """A weights file cannot be read or does not fit the network."""


class ClusterError(DescentError):
    """A cluster to train on cannot be reached or used (an address, a missing package)."""


def nearest(name: str, allowed) -> str:
    """Return ' (did you mean 'x'?)' for the closest allowed name, or ''."""
    allowed = [str(a) for a in allowed]
    match = difflib.get_close_matches(str(name), allowed, n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""
