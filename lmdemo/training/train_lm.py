"""Train the embedded language models (tiny-gpt, tiny-lstm, tiny-gru, tiny-rnn) from scratch on CPU.

The pipeline is corpus (lmdemo.training.corpus) -> one shared byte-level BPE tokenizer (trained once, cached,
copied into every model folder) -> token stream with `<|endoftext|>` between documents -> random
windows of `block_size` tokens -> AdamW with warmup and cosine decay, gradient clipping, a fixed
seed. `train(LMTrainConfig)` reports progress through a callback (the CLI passes a tqdm bar) and writes
the weights (safetensors), the tokenizer and `card.json` (parameters, steps, time, validation
perplexity) into the output folder. Validation perplexity is measured the same way for every
model: non-overlapping `block_size` windows of the held-out split, every token predicted.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from lmdemo.core import validate
from lmdemo.core.errors import UserError
from lmdemo.training import corpus

EOS = "<|endoftext|>"
VOCAB_SIZE = 8192
ARCHS = ("gpt", "lstm", "gru", "rnn")

# Default shapes: every fp32 weight file stays under 10 MB.
GPT_SHAPE = {"n_embd": 144, "n_layer": 4, "n_head": 4, "n_positions": 256}
RECURRENT_SHAPE = {
    "lstm": {"n_embd": 128, "n_hidden": 448, "n_layers": 1},
    "gru": {"n_embd": 128, "n_hidden": 512, "n_layers": 1},
    "rnn": {"n_embd": 128, "n_hidden": 512, "n_layers": 1},
}
DEFAULT_LR = {"gpt": 2e-3, "lstm": 3e-3, "gru": 3e-3, "rnn": 1e-3}


@dataclass(frozen=True)
class LMTrainConfig:
    """One from-scratch language-model training run (fine-tuning a classifier is
    `lmdemo.training.finetune.TrainConfig`)."""

    arch: str  # gpt, lstm, gru or rnn
    out: str  # folder for weights, tokenizer and card.json
    steps: int = 2000  # optimizer steps
    batch_size: int = 32  # windows per step
    block_size: int = 128  # tokens per window (and per validation window)
    lr: float = 0.0  # peak learning rate; 0 = the arch's default
    warmup: int = 100  # linear warmup steps
    weight_decay: float = 0.01  # AdamW weight decay (matrices only)
    dropout: float = 0.05  # dropout inside the model while training
    seed: int = 1234  # seeds torch, numpy and the window sampler
    threads: int = 2  # torch CPU threads (1 is faster when other jobs share the cores)
    eval_every: int = 500  # steps between quick validation checks (0 = only at the end)
    max_minutes: float = 0.0  # stop early after this many minutes (0 = no limit)
    corpus_dir: str = ""  # corpus folder (default: lmdemo.training.corpus.default_dir())
    model_id: str = ""  # id written in the card (default: tiny-<arch>)

    def validated(self) -> LMTrainConfig:
        """This config with every value checked and in its proper type, or a UserError naming the
        first bad value and what is allowed."""
        if not isinstance(self.out, str) or not self.out.strip():
            raise UserError("Give an output folder for the model (--out).")
        return replace(
            self,
            arch=validate.choice(self.arch, "arch", ARCHS),
            steps=validate.whole(self.steps, "steps", 1, 10_000_000),
            batch_size=validate.whole(self.batch_size, "batch size", 1, 4096),
            block_size=validate.whole(self.block_size, "block size", 2, 8192),
            lr=validate.real(self.lr, "learning rate", 0, 1, hint="0 = the arch's default"),
            warmup=validate.whole(self.warmup, "warmup", 0, 10_000_000),
            weight_decay=validate.real(self.weight_decay, "weight decay", 0, 10),
            dropout=validate.real(self.dropout, "dropout", 0, 1, hi_open=True),
            seed=validate.whole(self.seed, "seed", 0, 2**32 - 1),
            threads=validate.whole(self.threads, "threads", 1, 1024),
            eval_every=validate.whole(self.eval_every, "eval every", 0, 10_000_000,
                                      hint="0 = only at the end"),
            max_minutes=validate.real(self.max_minutes, "max minutes", 0, 100_000,
                                      hint="0 = no limit"),
        )


ProgressFn = Callable[[int, int, float], None]  # (step, total, loss)


def tokenizer_dir(corpus_dir: Path) -> Path:
    return corpus_dir / "tokenizer"


def train_tokenizer(docs: list[str], out: Path, vocab_size: int = VOCAB_SIZE):
    """A byte-level BPE tokenizer saved as a PreTrainedTokenizerFast (AutoTokenizer loads it)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOS],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(docs, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOS, eos_token=EOS,
                                   unk_token=EOS, pad_token=EOS, model_max_length=1024)
    out.mkdir(parents=True, exist_ok=True)
    fast.save_pretrained(str(out))
    return fast


def load_or_train_tokenizer(corpus_dir: Path):
    from transformers import AutoTokenizer

    folder = tokenizer_dir(corpus_dir)
    if not (folder / "tokenizer.json").exists():
        train_tokenizer(corpus.read_split("train", corpus_dir), folder)
    return AutoTokenizer.from_pretrained(str(folder))


def token_stream(tokenizer, docs: list[str], cache: Path | None = None) -> np.ndarray:
    """All documents as one uint16 array, each preceded by the eos/bos token."""
    if cache is not None and cache.exists():
        return np.load(cache)
    eos = tokenizer.convert_tokens_to_ids(EOS)
    ids: list[int] = []
    for start in range(0, len(docs), 4096):
        for row in tokenizer(docs[start:start + 4096], add_special_tokens=False)["input_ids"]:
            ids.append(eos)
            ids.extend(row)
    arr = np.asarray(ids, dtype=np.uint16)  # (N,)
    if cache is not None:
        np.save(cache, arr)
    return arr


def build_model(arch: str, vocab_size: int, eos_id: int, dropout: float = 0.0):
    """A fresh model of the given arch, with the default shape."""
    if arch == "gpt":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id,
                         resid_pdrop=dropout, embd_pdrop=dropout, attn_pdrop=dropout,
                         tie_word_embeddings=True, **GPT_SHAPE)
        return GPT2LMHeadModel(cfg)
    if arch in RECURRENT_SHAPE:
        from lmdemo.core.recurrent import RecurrentConfig, RecurrentLM

        return RecurrentLM(RecurrentConfig(arch=arch, vocab_size=vocab_size, dropout=dropout,
                                           **RECURRENT_SHAPE[arch]))
    raise UserError(f"Unknown arch {arch!r}: use one of {', '.join(ARCHS)}.")


def logits_of(model, input_ids):
    """Next-token logits (B, T, V) of any of the four model kinds."""
    return model(input_ids).logits


def evaluate(model, stream: np.ndarray, block: int, max_tokens: int = 0,
             batch_size: int = 32) -> tuple[float, int]:
    """Mean negative log-likelihood (nats per token) over non-overlapping windows, and tokens."""
    import torch
    import torch.nn.functional as F

    n_win = (len(stream) - 1) // block
    if max_tokens:
        n_win = min(n_win, max(1, max_tokens // block))
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, n_win, batch_size):
            idx = np.arange(start, min(start + batch_size, n_win)) * block
            x = torch.from_numpy(np.stack([stream[i:i + block] for i in idx]).astype(np.int64))
            y = torch.from_numpy(np.stack([stream[i + 1:i + 1 + block] for i in idx])
                                 .astype(np.int64))  # (B, T)
            logits = logits_of(model, x)  # (B, T, V)
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1),
                                   reduction="sum")
            total += float(loss)
            count += y.numel()
    model.train(was_training)
    return total / max(count, 1), count


def _lr_at(step: int, cfg: LMTrainConfig, peak: float, elapsed_s: float) -> float:
    """Linear warmup, then cosine decay to 10% of the peak over the steps or the time budget,
    whichever runs out first (so a run cut short by --max-minutes still ends annealed)."""
    if step < cfg.warmup:
        return peak * (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    if cfg.max_minutes:
        progress = max(progress, elapsed_s / (cfg.max_minutes * 60))
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def _save(model, arch: str, out: Path) -> None:
    if arch == "gpt":
        model.save_pretrained(str(out))
    else:
        model.save(out)


def train(cfg: LMTrainConfig, progress: ProgressFn | None = None,
          log: Callable[[str], None] = print) -> dict:
    """Train one model as `cfg` says and write it to `cfg.out`; return the card."""
    import torch
    import torch.nn.functional as F

    cfg = cfg.validated()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    corpus_dir = Path(cfg.corpus_dir) if cfg.corpus_dir else corpus.default_dir()
    tok = load_or_train_tokenizer(corpus_dir)
    train_ids = token_stream(tok, corpus.read_split("train", corpus_dir),
                             corpus_dir / "train_ids.npy")  # (N,)
    valid_ids = token_stream(tok, corpus.read_split("valid", corpus_dir),
                             corpus_dir / "valid_ids.npy")  # (M,)
    eos_id = tok.convert_tokens_to_ids(EOS)
    model = build_model(cfg.arch, len(tok), eos_id, cfg.dropout)
    if cfg.arch == "gpt" and cfg.block_size > model.config.n_positions:
        raise UserError(f"block size {cfg.block_size} exceeds n_positions "
                        f"{model.config.n_positions}.")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"{cfg.arch}: {n_params:,} parameters; train {len(train_ids):,} tokens, "
        f"valid {len(valid_ids):,} tokens")
    peak = cfg.lr or DEFAULT_LR[cfg.arch]
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "wpe" not in n]
    other = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "wpe" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                             {"params": other, "weight_decay": 0.0}], lr=peak, betas=(0.9, 0.95))
    model.train()
    start, step, loss_ema = time.monotonic(), 0, None
    history = []
    for step in range(1, cfg.steps + 1):
        for group in opt.param_groups:
            group["lr"] = _lr_at(step - 1, cfg, peak, time.monotonic() - start)
        starts = rng.integers(0, len(train_ids) - cfg.block_size - 1, size=cfg.batch_size)
        batch = np.stack([train_ids[s:s + cfg.block_size + 1] for s in starts]).astype(np.int64)
        x = torch.from_numpy(batch[:, :-1])  # (B, T)
        y = torch.from_numpy(batch[:, 1:])  # (B, T)
        logits = logits_of(model, x)  # (B, T, V)
        loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        value = float(loss.detach())
        loss_ema = value if loss_ema is None else 0.98 * loss_ema + 0.02 * value
        if progress:
            progress(step, cfg.steps, loss_ema)
        if cfg.eval_every and step % cfg.eval_every == 0:
            nll, _ = evaluate(model, valid_ids, cfg.block_size, max_tokens=16384)
            history.append({"step": step, "train_loss": round(loss_ema, 4),
                            "valid_ppl_16k": round(math.exp(nll), 2),
                            "minutes": round((time.monotonic() - start) / 60, 2)})
            log(json.dumps(history[-1]))
        if cfg.max_minutes and time.monotonic() - start > cfg.max_minutes * 60:
            log(f"stopping at step {step}: time budget of {cfg.max_minutes} min used")
            break
    train_s = time.monotonic() - start
    nll, n_tok = evaluate(model, valid_ids, cfg.block_size)
    model.eval()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    _save(model, cfg.arch, out)
    tok.save_pretrained(str(out))
    card = {
        "id": cfg.model_id or f"tiny-{cfg.arch}",
        "arch": cfg.arch,
        "parameters": n_params,
        "shape": GPT_SHAPE if cfg.arch == "gpt" else RECURRENT_SHAPE[cfg.arch],
        "vocab_size": len(tok),
        "steps": step,
        "tokens_seen": step * cfg.batch_size * cfg.block_size,
        "train_tokens": int(len(train_ids)),
        "train_seconds": round(train_s, 1),
        "valid_tokens": n_tok,
        "valid_loss": round(nll, 4),
        "valid_perplexity": round(math.exp(nll), 2),
        "final_train_loss_ema": round(loss_ema or 0.0, 4),
        "history": history,
        "config": asdict(cfg) | {"lr": peak},
        "torch": torch.__version__,
        "threads": cfg.threads,
    }
    (out / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    return card

