"""Planners' tools: who reaches each village in time, when the doctrine fails, where to add units.

* :mod:`simulations.coverage`: static 1-3-5 coverage (k = 1..3, acceptance-aware), from the
  live index, the volunteers' homes or a scenario file; :func:`~simulations.coverage.
  coverage_from_index` is the server's ``GET /api/v1/coverage``.
* :mod:`simulations.day`: simulated days (discrete events) against the real dispatch core.
* :mod:`simulations.siting`: where to place new units (lazy greedy, exact MILP, MEXCLP).
* :mod:`simulations.stats`, :mod:`simulations.report`, :mod:`simulations.plots`: confidence
  intervals, run folders and manifests, PNG plots.
* :mod:`simulations.commands` and ``python -m simulations coverage | day | site``.
"""
