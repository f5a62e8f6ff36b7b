"""Training one network: the model over the flat parameter vector, the
Trainer (a generator of :mod:`engine.events`), transfer-learning primitives and
the learning-rate finder's sweep."""
