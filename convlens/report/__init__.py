"""The report and the comparison page: self-contained HTML from Jinja2 templates, the model summary.

May import analysis, render, model, data, pipeline and the top modules; never cli.
"""
