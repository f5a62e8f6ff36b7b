"""The mapping report of an import: which foreign tensor became which Descent
tensor, what was left out and why, and every convention that was converted.

The book calls reusing another framework's model "quite tedious" because
every variable has to be assigned to the right place by hand; the report is
that assignment written down, so a reader can check it tensor by tensor.
It is printed by ``python main.py import``, saved as ``import.json`` in the
imported folder and shown by the window's File -> Import model.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

REPORT_FORMAT = "descent-import"
REPORT_VERSION = 1


@dataclass(frozen=True)
class Mapped:
    """One foreign tensor copied into a Descent tensor."""
    source: str                 # name in the file (e.g. "0.weight", "layers/dense/vars/0", "Gemm_0:B")
    target: str                 # Descent name (layers.<i>.kernel ...)
    shape: tuple                # shape in the file
    transposed: bool = False    # (out, in) in the file -> (in, out) in Descent
    note: str = ""              # any conversion applied on the way (folded alpha, broadcast slope ...)


@dataclass(frozen=True)
class Ignored:
    """Something in the file that has no Descent tensor, and why that is harmless (or not)."""
    source: str
    reason: str


@dataclass
class Report:
    """Everything an import decided, in the order it decided it."""
    tensors: list = field(default_factory=list)       # [Mapped]
    ignored: list = field(default_factory=list)       # [Ignored]
    conventions: list = field(default_factory=list)   # [str]: conversions between the frameworks' rules
    layers: list = field(default_factory=list)        # [str]: where each Descent layer came from

    def map(self, source: str, target: str, shape, transposed: bool = False, note: str = "") -> None:
        self.tensors.append(Mapped(source, target, tuple(int(s) for s in shape), transposed, note))

    def ignore(self, source: str, reason: str) -> None:
        self.ignored.append(Ignored(source, reason))

    def convention(self, text: str) -> None:
        if text not in self.conventions:
            self.conventions.append(text)

    def as_dict(self) -> dict:
        return {"tensors": [dict(asdict(m), shape=list(m.shape)) for m in self.tensors],
                "ignored": [asdict(i) for i in self.ignored],
                "conventions": list(self.conventions), "layers": list(self.layers)}


def _shape(shape) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def report_text(summary: dict) -> str:
    """The report as a table for a terminal (``summary`` is import.json's content)."""
    src = summary["source"]
    lines = [f"imported {src['path']} ({src['format']}{', ' + src['producer'] if src.get('producer') else ''})",
             f"network: {summary['descent']['n_inputs']} inputs -> {summary['descent']['n_outputs']} outputs "
             f"({summary['descent']['output']}), {summary['descent']['n_params']:,} parameters", ""]
    lines += ["layers:"] + [f"  {text}" for text in summary["layers"]] + [""]
    rows = [("foreign tensor", "Descent tensor", "shape", "transposed")]
    for m in summary["tensors"]:
        rows.append((m["source"], m["target"], _shape(m["shape"]), "yes" if m["transposed"] else "no"))
    widths = [max(len(r[k]) for r in rows) for k in range(4)]
    for j, r in enumerate(rows):
        lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    notes = [f"  {m['source']}: {m['note']}" for m in summary["tensors"] if m["note"]]
    if notes:
        lines += ["", "conversions:"] + notes
    lines += ["", "ignored:"] + ([f"  {i['source']}: {i['reason']}" for i in summary["ignored"]] or ["  nothing"])
    if summary["conventions"]:
        lines += ["", "conventions:"] + [f"  - {c}" for c in summary["conventions"]]
    return "\n".join(lines) + "\n"
