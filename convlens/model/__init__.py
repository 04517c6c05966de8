"""The model: the .keras archive and its allow-list, layers, stored weights, the numpy forward pass, Keras.

May import convlens.pipeline and the top modules; never data, analysis, render, report or cli.
"""
