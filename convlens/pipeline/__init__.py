"""The pipeline's plumbing: params (config), where each artifact lives (paths), atomic files, DVC's lock.

May import only the top modules (convlens.schema, convlens.checks, convlens.errors).
"""
