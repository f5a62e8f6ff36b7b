"""The experiment schema: what an experiment file may say, validated on load.

Imports only :mod:`engine.params`, the registries and :mod:`engine.errors`;
never a runner.  Every other layer reads resolved experiments produced here.
"""
