"""Analyses that run on any representation the benchmark loads (docs/analyses.md).

- steering: label features, feature steering and ablation as a metric (issue 10)
- clustering, retrieval, duplicates: latent-space analyses scored against Shapes ground
  truth (issue 11)
- plots: the PNG figures; run: the orchestration behind `interpbench analyze`

Every function below `run` works on plain tensors, so it can be tested on constructed codes.
"""
