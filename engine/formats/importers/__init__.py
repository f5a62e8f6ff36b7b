"""Import networks trained elsewhere: ONNX, Keras and PyTorch.

Chapter 11's "Reusing Models from Other Frameworks": load the parameters of
a model trained with another framework and assign them to the right
variables.  ``python main.py import FILE [--out DIR] [--experiment EXP]
[--activations relu,relu,softmax]`` does that assignment and writes a run
folder, so an imported network can be used wherever a trained one can
(``run --init-weights``, a staged experiment's reuse, ``export``,
``predict``, the window):

* :mod:`.onnx_import` -- ``.onnx`` graphs (``onnx.checker`` first);
* :mod:`.keras_import` -- Keras 3 ``.keras`` archives and Keras 2 full-model ``.h5``;
* :mod:`.torch_import` -- PyTorch ``state_dict`` files saved as ``.safetensors``
  (the architecture from ``--experiment`` or ``--activations``); pickles are
  refused with instructions;
* :mod:`.stack` -- the rules every importer shares (what Descent can express);
* :mod:`.mapping` -- the mapping report (``import.json``, printed);
* :mod:`.assemble` -- the experiment, the metadata and the folder.

Anything Descent cannot represent is refused with one message naming the
foreign node or layer, its type and what is supported; nothing is written
then.  Nothing in a file is ever executed or unpickled.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from engine.errors import WeightsError
from engine.formats import weights_metadata
from engine.formats.runstore import default_run_dir
from engine.spec.experiment import load_experiment
from engine.formats.importers.torch_import import PICKLED, read_torch, refuse_pickle
from engine.formats.importers.assemble import (Imported, build_experiment, check_network, data_metadata,
                                               summary_dict, write_folder)
from engine.formats.importers.mapping import report_text

__all__ = ["SUFFIXES", "read_model", "import_model", "import_to_folder", "imported_network", "cli_import",
           "Imported", "ImportResult"]

# suffix -> (format, reader); .pt/.pth & co. are refused by the PyTorch reader
SUFFIXES = (".onnx", ".keras", ".h5", ".hdf5", ".safetensors")


@dataclass
class ImportResult:
    """What an import produced, before or after writing."""
    imported: Imported
    experiment: dict         # resolved
    metadata: dict           # the weights files' metadata
    network: object          # the Descent Network, loaded (proof that every reader can rebuild it)
    summary: dict            # import.json

    @property
    def weights(self) -> dict:
        return self.imported.weights

    def text(self) -> str:
        return report_text(self.summary)


def read_model(path, *, experiment: dict | None = None, activations: str | None = None) -> Imported:
    """The foreign network in ``path``, in Descent's terms (format from the file name)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in PICKLED:
        refuse_pickle(path)
    if suffix == ".weights.h5" or path.name.lower().endswith(".weights.h5"):
        raise WeightsError(f"{path}: a .weights.h5 file holds weights only, without the architecture; import the "
                           f"whole model (.keras), or for a Descent export use the run's weights.safetensors")
    if suffix not in SUFFIXES:
        raise WeightsError(f"{path}: cannot import {suffix or 'a file without suffix'}; Descent imports "
                           f".onnx, .keras, .h5 (Keras full model) and .safetensors (PyTorch state_dict)")
    if suffix != ".safetensors" and activations is not None:
        raise WeightsError(f"{path}: --activations is for PyTorch state_dicts; a {suffix} file names its "
                           f"activations itself")
    if suffix == ".onnx":
        from engine.formats.importers.onnx_import import read_onnx  # deliberately lazy: loads onnx

        return read_onnx(path)
    if suffix in (".keras", ".h5", ".hdf5"):
        from engine.formats.importers.keras_import import read_keras  # deliberately lazy: loads h5py

        return read_keras(path)
    return read_torch(path, experiment=experiment, activations=activations)


def import_model(path, *, experiment: dict | None = None, activations: str | None = None,
                 experiment_source: str | None = None) -> ImportResult:
    """Read, lay out, resolve and rebuild -- everything but writing.  ``experiment`` (resolved)
    supplies the architecture of a PyTorch file and, for every format, the data, optimizer and
    training sections, and must agree with the file's layers."""
    imported = read_model(path, experiment=experiment, activations=activations)
    resolved = build_experiment(imported, experiment)
    summary = {"status": "imported", "reason": f"imported from {imported.path.name} ({imported.format})",
               "source": str(imported.path)}
    metadata = weights_metadata(resolved, summary, data_metadata(imported, resolved))
    net = check_network(imported, metadata)
    return ImportResult(imported, resolved, metadata, net, summary_dict(imported, resolved, net, experiment_source))


def import_to_folder(path, out=None, **options) -> tuple[ImportResult, Path]:
    """:func:`import_model`, then the run-style folder (default ``runs/<stamp>-imported-<name>``)."""
    result = import_model(path, **options)
    folder = Path(out) if out is not None else default_run_dir(result.experiment["name"])
    result.metadata["summary"] = dict(result.metadata["summary"], n_params=int(result.network.n_params))
    written = write_folder(folder, result.experiment, result.weights, result.metadata, result.summary)
    return result, written


def imported_network(path, experiment: dict, source: str | None = None):
    """A ready Descent network from a foreign file laid out as ``experiment`` (a staged experiment's
    imported stage uses this): the model section must match the file."""
    return import_model(path, experiment=experiment, experiment_source=source).network


def cli_import(args) -> int:
    """``python main.py import FILE [--out DIR] [--experiment EXP] [--activations LIST]``."""
    experiment = None
    if args.experiment:
        experiment = load_experiment(args.experiment)
    result, folder = import_to_folder(args.file, args.out, experiment=experiment, activations=args.activations,
                                      experiment_source=args.experiment)
    sys.stdout.write(result.text())
    print(f"\nrun folder written to {folder}: use it with run --init-weights {folder / 'weights.safetensors'}, "
          f"export {folder}, predict {folder / 'weights.safetensors'} DATA")
    return 0
