"""Training and its measurements: fine-tuning a classifier (jobs, runs, model soups, review data,
metrics, querying and evaluating classifiers) and training the small language models on the
project's corpus. Imports lmdemo.core and lmdemo.lab.
"""
