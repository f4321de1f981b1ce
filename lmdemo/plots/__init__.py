"""Plot builders: result dataclasses and arrays in, plotly figures out; one module per page.

Nothing here imports torch, so figures can be built from precomputed results while models load.
"""
