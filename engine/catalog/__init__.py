"""The catalogues: one registry per kind of building block.

``activations``, ``initializers``, ``optimizers`` and ``schedules`` each hold
one :class:`~engine.registry.Registry`.  An entry carries its own behaviour
(parameters, compiled code, title, export mapping), so the schema, the window's
pickers, the exporters and the tests all read it from here.
"""
