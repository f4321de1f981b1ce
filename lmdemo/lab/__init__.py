"""One module per idea the app shows: the next-token engine and generation, sampling, attention,
positional encodings and rotary embeddings, position ablation, the RNN lab.
Each returns small dataclasses or numpy arrays; imports only lmdemo.core.
"""
