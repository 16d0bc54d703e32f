"""Metrics behind `gantui eval`.

toy_metrics   mode coverage and 1-D Wasserstein distance for the toy mixtures (pure numpy)
image_metrics FID, KID, precision/recall, density/coverage, class coverage (pure functions of feature matrices)
features      the feature spaces image metrics are computed in (Inception-v3 pool3, or gantui's own classifier
              for labelled data and autoencoder for unlabelled data, each trained once and cached)
report        the rich table and the JSON object
"""
