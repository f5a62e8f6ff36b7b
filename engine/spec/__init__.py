"""The experiment schema: what an experiment file may say, validated on load.

Imports only the foundation (:mod:`engine.errors`, :mod:`engine.params`),
the catalogues (:mod:`engine.catalog`) and the data sets' registry
(:mod:`engine.data`); never a runner.  Every other layer reads resolved
experiments produced here.  The modules, each importing only those before it:

* :mod:`~engine.spec.seeds`, :mod:`~engine.spec.lr_finder`,
  :mod:`~engine.spec.reuse` -- seed lists, the finder's keys, layer reuse;
* :mod:`~engine.spec.sections` -- a single run: data, model, loss,
  optimizer, schedule, training (:func:`~engine.spec.sections.resolve_single`);
* :mod:`~engine.spec.overrides` -- the one rule for merging a partial
  experiment into a full one;
* :mod:`~engine.spec.compare`, :mod:`~engine.spec.stages` -- the optional
  sections that repeat a run (their variants and phases are single runs);
* :mod:`~engine.spec.experiment` -- the whole experiment, files and presets.
"""
