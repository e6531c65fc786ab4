"""The Gucheng county dataset: its generator, its loader and its validation.

Theory of operation
-------------------
``data/gucheng/`` is generated, not hand-drawn. :mod:`geo.dataset.build` reads the read-only
facts in ``data/gucheng/sources/`` (the county outline, the 13 townships with their seats,
areas, populations and village counts, two known roads, hypothetical police stations) and
derives everything positional from them with a fixed seed:

1. :mod:`~geo.dataset.partition`: township polygons, a power diagram of the seats whose weights
   are fitted until every township has its (scaled) known area;
2. :mod:`~geo.dataset.places`: villages and communities (Lloyd-relaxed points inside each
   township), their populations, the 26 workstations and the minimum emergency units;
3. :mod:`~geo.dataset.roadnet`: one connected, noded road network through every village;
4. :mod:`~geo.dataset.people`: the 13,556 volunteers, their roles, teams, modes and duty hours;
5. :mod:`~geo.dataset.output` writes GeoJSON (RFC 7946) and CSV byte-for-byte reproducibly,
   :mod:`~geo.dataset.plot` draws ``overview.png``.

:mod:`geo.dataset.validate` re-checks every invariant on the files alone (so it also judges a
dataset built elsewhere, e.g. from OpenStreetMap); :mod:`geo.dataset.load` turns the files into
frozen columnar dataclasses (numpy arrays, integer H3 cells) for the engine. The file layout,
field names and vocabularies shared by the three live in :mod:`geo.dataset.schema`.

Nothing heavy is imported here: ``dispatch dataset ...`` imports the sub-module it needs.
"""
