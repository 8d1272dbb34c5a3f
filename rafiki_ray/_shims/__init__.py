"""Shim packages ``nni``, ``t9k`` and ``polyaxon_client`` (see :func:`rafiki_ray.trial.install_shims`).

This directory, not the package, goes on ``sys.path``: its sub-packages then import as the
names users' trial scripts already use.
"""
