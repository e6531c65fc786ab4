"""Pure geography: the county dataset, coordinate validation, H3 cells, travel times, isochrones.

GeoDataFrames and shapely objects stay at this package's edge (the loaders and isochrone
export); everything handed inward is numpy arrays and integer H3 cells.
"""
