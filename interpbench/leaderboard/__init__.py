"""Leaderboards, plots, feature cards and checkpoint trajectories from the results store.

Everything here reads what `interpbench evaluate` wrote (interpbench.results.store); only
feature cards and search load a model again, to show images.
"""
