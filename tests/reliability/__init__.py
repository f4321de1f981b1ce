"""Reliability tests: the abuse corpus (CLI and API), races and memory bounds."""
