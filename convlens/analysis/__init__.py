"""What the analyses compute, arrays in, arrays out: statistics, the dataset pass, examples, evaluate, attribution.

May import convlens.render (tiling), model, data, pipeline and the top modules; never report or cli.
"""
