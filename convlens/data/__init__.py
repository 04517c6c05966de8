"""The data: downloads (pinned checksums, mirrors), IDX files, the samples.

May import convlens.pipeline and the top modules; never model, analysis, render, report or cli.
"""
