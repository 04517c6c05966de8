"""Drawing: tile grids (arrays in, an image out) and the matplotlib figures.

May import convlens.pipeline and the top modules; never model, data, analysis, report or cli.
"""
