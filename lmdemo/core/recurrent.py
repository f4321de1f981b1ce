"""Recurrent language models (vanilla tanh RNN, LSTM, GRU) with one small, shared interface.

`RecurrentConfig` holds exactly what a model folder's `config.json` holds. `RecurrentLM` embeds
tokens, runs them through `torch.nn.RNN` (h_t = tanh(W x_t + U h_{t-1} + b)), `nn.LSTM` or `nn.GRU`,
projects the top layer's states back to the embedding size and scores every token with the (tied)
embedding matrix. `forward` returns `RecurrentOutput` with `.logits`, the top layer's per-step
states `.hidden_states` when asked, and the final state `.hidden` to continue stepping. Weights are
stored as `model.safetensors` next to `config.json`; `save`/`from_folder` read and write both.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

ARCHS = ("rnn", "lstm", "gru")


@dataclass
class RecurrentConfig:
    """The shape of a recurrent LM (the fields of its config.json)."""

    arch: str = "lstm"  # "rnn" (tanh), "lstm" or "gru"
    vocab_size: int = 8192  # tokens in the tokenizer
    n_embd: int = 128  # size of token embeddings (and of the tied output matrix)
    n_hidden: int = 512  # size of the recurrent state
    n_layers: int = 1  # stacked recurrent layers
    tie_embeddings: bool = True  # output scores use the input embedding matrix
    dropout: float = 0.0  # dropout between layers and before the output (training only)
    max_len: int = 512  # longest context the services feed it (the model itself has no limit)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, not {self.arch!r}")


@dataclass
class RecurrentOutput:
    """What `RecurrentLM.forward` returns."""

    logits: torch.Tensor  # (B, T, V)
    hidden_states: torch.Tensor | None  # (B, T, H): top layer's state at every step, when asked
    hidden: Any  # final state: (L, B, H), or a pair (h, c) of those for the LSTM


class RecurrentLM(nn.Module):
    """Embedding -> RNN/LSTM/GRU -> projection -> tied output layer."""

    def __init__(self, config: RecurrentConfig):
        super().__init__()
        self.config = config
        cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[config.arch]
        kw = {"nonlinearity": "tanh"} if config.arch == "rnn" else {}
        self.embed = nn.Embedding(config.vocab_size, config.n_embd)
        self.rnn = cls(config.n_embd, config.n_hidden, num_layers=config.n_layers,
                       batch_first=True, dropout=config.dropout if config.n_layers > 1 else 0.0,
                       **kw)
        self.proj = nn.Linear(config.n_hidden, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.head.weight = self.embed.weight
        nn.init.normal_(self.embed.weight, std=0.02)

    def forward(self, input_ids: torch.Tensor, hidden=None,
                return_hidden_states: bool = False) -> RecurrentOutput:
        x = self.drop(self.embed(input_ids))  # (B, T, E)
        states, hidden = self.rnn(x, hidden)  # (B, T, H)
        logits = self.head(self.drop(self.proj(states)))  # (B, T, V)
        return RecurrentOutput(logits=logits,
                               hidden_states=states if return_hidden_states else None,
                               hidden=hidden)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def save(self, folder: str | Path) -> None:
        """Write config.json and model.safetensors (the tied head is stored once)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.json").write_text(json.dumps(asdict(self.config), indent=2) + "\n")
        state = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        if self.config.tie_embeddings:
            state.pop("head.weight", None)
        save_file(state, str(folder / "model.safetensors"))

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        state = dict(state_dict)
        if self.config.tie_embeddings and "head.weight" not in state and "embed.weight" in state:
            state["head.weight"] = state["embed.weight"]
        return super().load_state_dict(state, strict=strict, assign=assign)

    @classmethod
    def from_folder(cls, folder: str | Path) -> RecurrentLM:
        from safetensors.torch import load_file

        folder = Path(folder)
        model = cls(RecurrentConfig(**json.loads((folder / "config.json").read_text())))
        model.load_state_dict(load_file(str(folder / "model.safetensors")))
        return model
