"""Fine-tune an encoder into a binary sentiment classifier (full fine-tuning or LoRA).

The trainer takes a fresh, uncached classifier from `lmdemo.core.models.fresh_classifier` (the only
weight-loading path), and trains it with AdamW (PyTorch's fused kernel where the device has one,
as on CPU and CUDA; no decay on biases and LayerNorm), a linear warm-up then linear decay,
gradient clipping and a fixed seed. Batches are grouped by length and padded only to the longest
review in each batch (dynamic padding), which is where most of the speed over a plain `Trainer`
comes from. Hugging Face Accelerate handles the device, bf16 autocast
on CUDA and data parallelism: `accelerate launch --num_processes 2 --cpu -m lmdemo finetune ...`
runs the same code on two processes. Progress goes to an `on_step(dict)` callback; the best epoch
by validation accuracy is saved with `save_pretrained` (a LoRA adapter plus the head, or a full
model folder), which `lmdemo.core.models` loads back as a classifier.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from lmdemo.core import validate
from lmdemo.core.config import settings
from lmdemo.core.errors import UserError
from lmdemo.training.duration import RemainingTime
from lmdemo.training.metrics import binary_metrics
from lmdemo.training.reviews import Reviews

METHODS = ("lora", "full")
# LoRA targets for BERT-style encoders (MiniLM): attention projections and both feed-forward
# matrices; other architectures use peft's defaults for their model type.
BERT_LORA_TARGETS = ["query", "key", "value", "intermediate.dense", "output.dense"]


def _int_if_whole(x: float) -> int | float:
    return int(x) if float(x).is_integer() else x


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters of one fine-tuning run."""

    base: str = "minilm"  # encoder id to fine-tune (embedded, hub or mirror)
    method: str = "lora"  # "lora" (adapter + head) or "full" (every weight)
    epochs: int = 3  # passes over the training data
    learning_rate: float = 5e-4  # peak AdamW learning rate (LoRA likes ~5e-4, full ~3e-5)
    batch_size: int = 16  # reviews per optimisation step (per process)
    max_length: int = 256  # tokens per review; longer reviews are truncated
    warmup: float = 0.1  # fraction of the steps with a linear learning-rate warm-up
    weight_decay: float = 0.01  # AdamW decoupled weight decay (not on biases / LayerNorm)
    seed: int = 0  # seeds shuffling, initialisation of the head and LoRA, dropout
    mixed_precision: bool = True  # bf16 autocast on CUDA GPUs that support it; ignored on CPU
    lora_r: int = 8  # LoRA rank
    lora_alpha: int = 16  # LoRA scaling numerator (scale = alpha / r)
    lora_dropout: float = 0.1  # dropout on the LoRA path
    token_dropout: float = 0.0  # share of word tokens replaced by [MASK] in training batches
    group_by_length: bool = True  # batches of similar lengths (less padding)
    eval_batch_size: int = 64  # reviews per evaluation forward pass

    def validated(self) -> TrainConfig:
        """This config with every value checked and in its proper type (whole floats and numeric
        strings become numbers), or a UserError naming the first bad value and what is allowed;
        batch size × max length is capped by the server's LMDEMO_MAX_BATCH_TOKENS."""
        if not isinstance(self.base, str) or not self.base.strip():
            raise UserError("Choose a base encoder to fine-tune (e.g. minilm).")
        checked = replace(
            self,
            base=self.base.strip(),
            method=validate.choice(self.method, "Method", METHODS),
            learning_rate=validate.real(self.learning_rate, "Learning rate", 0, 1, lo_open=True),
            epochs=validate.whole(self.epochs, "Epochs", 1, 100),
            batch_size=validate.whole(self.batch_size, "Batch size", 1, 1024),
            max_length=validate.whole(self.max_length, "Max length", 2, 4096),
            warmup=validate.real(self.warmup, "Warm-up", 0, 1, hi_open=True),
            weight_decay=validate.real(self.weight_decay, "Weight decay", 0, 10, hi_open=True),
            seed=validate.whole(self.seed, "Seed", 0, 2**32 - 1),
            mixed_precision=bool(self.mixed_precision),
            lora_r=validate.whole(self.lora_r, "LoRA rank", 1, 256),
            lora_alpha=_int_if_whole(validate.real(self.lora_alpha, "LoRA alpha", 0, 1024,
                                                   lo_open=True)),
            lora_dropout=validate.real(self.lora_dropout, "LoRA dropout", 0, 1, hi_open=True),
            token_dropout=validate.real(self.token_dropout, "Token dropout", 0, 0.9,
                                        hi_open=True),
            group_by_length=bool(self.group_by_length),
            eval_batch_size=validate.whole(self.eval_batch_size, "Eval batch size", 1, 4096),
        )
        budget = settings().max_batch_tokens
        tokens = checked.batch_size * checked.max_length
        if tokens > budget:  # activation memory grows with the tokens in a batch
            raise UserError(f"Batch size × max length is {checked.batch_size} × "
                            f"{checked.max_length} = {tokens:,} tokens per batch; this server "
                            f"allows at most {budget:,} (LMDEMO_MAX_BATCH_TOKENS): lower the "
                            "batch size or the max length.")
        return checked

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> TrainConfig:
        """A config from JSON-like data (page, CLI, config.json); unknown keys are ignored."""
        names = {f.name for f in fields(cls)}
        kwargs = {}
        for key, value in data.items():
            if key not in names or value is None:
                continue
            if isinstance(getattr(cls, key), bool) and not isinstance(value, bool):
                value = str(value).strip().lower() in ("1", "true", "yes", "on")
            kwargs[key] = value  # numbers are checked and converted by validated()
        return cls(**kwargs).validated()


@dataclass
class TrainResult:
    """What a training run reports back (plain numbers; the model is saved to disk)."""

    history: list[dict] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = 0
    best_val_accuracy: float | None = None
    train_samples_per_s: float = 0.0  # training throughput, excluding evaluation
    train_tokens_per_s: float = 0.0  # ... in tokens (what lmdemo.training.duration estimates with)
    eval_tokens_per_s: float = 0.0  # validation tokens per second (0 without validation data)
    train_seconds: float = 0.0
    steps: int = 0
    trainable_params: int = 0
    total_params: int = 0
    device: str = "cpu"
    mixed_precision: str = "no"
    processes: int = 1

    def to_json(self) -> dict:
        return asdict(self)


class LengthGroupedBatches:
    """Batches of indices with similar lengths, in a fresh random order each epoch.

    Indices are shuffled, cut into mega-chunks of 50 batches, each chunk is sorted by length and cut
    into batches, and the batches are shuffled (transformers' LengthGroupedSampler does the same).
    Every process computes the same order from the seed and the epoch counter, so Accelerate can
    shard it across processes.
    """

    def __init__(self, lengths: list[int], batch_size: int, seed: int, group: bool = True):
        self.lengths, self.batch_size, self.seed, self.group = lengths, batch_size, seed, group
        self.epoch = 0

    def __len__(self) -> int:
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(self.seed * 100_003 + self.epoch)
        self.epoch += 1
        idx = list(range(len(self.lengths)))
        rng.shuffle(idx)
        bs = self.batch_size
        if self.group:
            mega = bs * 50
            chunks = [sorted(idx[i:i + mega], key=lambda j: -self.lengths[j])
                      for i in range(0, len(idx), mega)]
            idx = [j for chunk in chunks for j in chunk]
        batches = [idx[i:i + bs] for i in range(0, len(idx), bs)]
        if self.group:
            rng.shuffle(batches)
        yield from batches


def _encode(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def _collate(pad_id: int, drop: float = 0.0, mask_id: int | None = None, seed: int = 0):
    """Pad a batch to its longest review; optionally replace a share `drop` of the word tokens
    (never the first and last, [CLS]/[SEP]) by `mask_id` — word dropout, a regulariser."""
    import torch

    gen = torch.Generator().manual_seed(seed)

    def collate(items: list[tuple[list[int], int]]) -> dict:
        width = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)  # (B, T)
        mask = torch.zeros((len(items), width), dtype=torch.long)  # (B, T)
        for row, (ids, _) in enumerate(items):
            input_ids[row, :len(ids)] = torch.tensor(ids)
            mask[row, :len(ids)] = 1
        if drop > 0 and mask_id is not None:
            inner = mask.clone()  # (B, T) word positions: not padding, [CLS] or [SEP]
            inner[:, 0] = 0
            inner[torch.arange(len(items)), mask.sum(1) - 1] = 0
            hit = (torch.rand(input_ids.shape, generator=gen) < drop) & inner.bool()  # (B, T)
            input_ids[hit] = mask_id
        labels = torch.tensor([y for _, y in items], dtype=torch.long)  # (B,)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    return collate


def _accelerator(cpu: bool, mixed_precision: str):
    """An `Accelerator` for this run. Accelerate keeps one process-wide state and refuses a second
    Accelerator with another precision or device; a single process (a bench comparing bf16 with
    fp32, a test) may train twice, so its state is reset first. Under `accelerate launch` (several
    processes) the launcher's state is kept."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    # Private Accelerate API (checked by tests/unit/test_private_apis.py): the shared-state dict
    # and `_reset_state`. Without them a second precision in one process fails as Accelerate
    # itself would; the run still trains when it is the first one.
    state = getattr(AcceleratorState, "_shared_state", None)
    reset = getattr(AcceleratorState, "_reset_state", None)
    if state and state.get("num_processes", 1) == 1 and reset is not None:
        reset(reset_partial_state=False)
    return Accelerator(cpu=cpu, mixed_precision=mixed_precision)


def _wrap_lora(model, cfg: TrainConfig):
    from peft import LoraConfig, TaskType, get_peft_model

    model_type = getattr(model.config, "model_type", "")
    bert = model_type == "bert"
    lora = LoraConfig(task_type=TaskType.SEQ_CLS, r=int(cfg.lora_r), lora_alpha=cfg.lora_alpha,
                      lora_dropout=cfg.lora_dropout,
                      target_modules=BERT_LORA_TARGETS if bert else None,
                      modules_to_save=["classifier", "pooler"] if bert else None)
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise UserError(f"LoRA does not know this architecture ({model_type}); use full "
                        f"fine-tuning. ({str(exc)[:160]})") from exc


def _fast_attention(model) -> None:
    """Train with PyTorch's fused scaled-dot-product attention (the cached models for viewing
    use eager attention, which can return the weights; training never needs them)."""
    try:
        model.set_attn_implementation("sdpa")
    except (AttributeError, ValueError, ImportError):
        pass  # an architecture without SDPA support keeps eager attention


def _param_groups(model, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "LayerNorm" in name or "bias" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def _adamw_kernel(device) -> dict:
    """AdamW's fused kernel where PyTorch has one for the device (CPU and CUDA do): one pass over
    each parameter instead of a dozen element-wise ops, the same update (Trainer's default
    optimizer, `adamw_torch_fused`, uses it too); elsewhere PyTorch's default implementation."""
    try:  # a private torch helper (checked by tests/unit/test_private_apis.py)
        from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

        return {"fused": True} if device.type in _get_fused_kernels_supported_devices() else {}
    except ImportError:  # pragma: no cover - moved or renamed: the default (slower) AdamW
        return {}


def predict_encoded(model, encoded: list[list[int]], pad_id: int, device, batch_size: int = 64):
    """Positive-class probabilities of already-tokenized reviews (length-sorted batches)."""
    import numpy as np
    import torch

    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
    probs = np.zeros(len(encoded), dtype=np.float64)
    collate = _collate(pad_id)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            batch = collate([(encoded[i], 0) for i in chunk])
            logits = model(input_ids=batch["input_ids"].to(device),
                           attention_mask=batch["attention_mask"].to(device)).logits  # (B, 2)
            p = torch.softmax(logits.float(), dim=-1)[:, 1]  # (B,)
            probs[chunk] = p.cpu().numpy()
    model.train(was_training)
    return probs


def train(cfg: TrainConfig, train_data: Reviews, val_data: Reviews | None = None,
          out_dir: str | Path | None = None, on_step: Callable[[dict], None] | None = None,
          device: str | None = None) -> TrainResult:
    """Fine-tune `cfg.base` on `train_data`; keep the epoch with the best validation accuracy
    (the last one without validation data) in `out_dir` (a `save_pretrained` folder)."""
    cfg = cfg.validated()
    if len(train_data) == 0:
        raise UserError("There are no training reviews.")
    import torch
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    from lmdemo.core.device import pick_device
    from lmdemo.core.models import fresh_classifier

    dev = pick_device(device)
    bf16 = (cfg.mixed_precision and dev.startswith("cuda") and torch.cuda.is_bf16_supported())
    accelerator = _accelerator(cpu=dev == "cpu", mixed_precision="bf16" if bf16 else "no")
    set_seed(cfg.seed)
    model, tokenizer = fresh_classifier(cfg.base)
    _fast_attention(model)
    if cfg.method == "lora":
        model = _wrap_lora(model, cfg)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    limit = min(int(cfg.max_length), getattr(model.config, "max_position_embeddings", 512) or 512)
    encoded = _encode(tokenizer, train_data.texts, limit)
    items = list(zip(encoded, train_data.labels, strict=True))
    val_encoded = _encode(tokenizer, val_data.texts, limit) if val_data and len(val_data) else []
    # evaluation keeps no activations for a backward pass: 4x the training token budget
    eval_batch = max(1, min(int(cfg.eval_batch_size), 4 * settings().max_batch_tokens // limit))

    sampler = LengthGroupedBatches([len(e) for e in encoded], int(cfg.batch_size), cfg.seed,
                                   cfg.group_by_length)
    mask_id = tokenizer.mask_token_id if tokenizer.mask_token_id is not None else \
        tokenizer.unk_token_id
    collate = _collate(pad_id, float(cfg.token_dropout), mask_id, cfg.seed + accelerator.process_index)
    loader = torch.utils.data.DataLoader(items, batch_sampler=sampler, collate_fn=collate,
                                         pin_memory=accelerator.device.type == "cuda")
    model.to(accelerator.device)  # before the optimizer, so it can pick a kernel for the device
    optimizer = torch.optim.AdamW(_param_groups(model, cfg.weight_decay), lr=cfg.learning_rate,
                                  **_adamw_kernel(accelerator.device))
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    steps_per_epoch = len(loader)
    total = steps_per_epoch * int(cfg.epochs)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * total), total)

    raw = accelerator.unwrap_model(model)
    result = TrainResult(device=str(accelerator.device), processes=accelerator.num_processes,
                         mixed_precision="bf16" if bf16 else "no",
                         trainable_params=sum(p.numel() for p in raw.parameters() if p.requires_grad),
                         total_params=sum(p.numel() for p in raw.parameters()))
    step, seen, seen_tokens, train_time = 0, 0, 0, 0.0
    remaining = RemainingTime(sum(map(len, encoded)) * int(cfg.epochs), total,
                              sum(map(len, val_encoded)), int(cfg.epochs) if val_encoded else 0)
    start_all = time.perf_counter()
    for epoch in range(1, int(cfg.epochs) + 1):
        model.train()
        losses = []
        t0 = last = time.perf_counter()
        for batch in loader:
            with accelerator.autocast():
                loss = model(**batch).loss  # scalar cross-entropy
            accelerator.backward(loss)
            accelerator.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            seen += batch["labels"].shape[0] * accelerator.num_processes
            losses.append(float(loss.detach()))
            if not math.isfinite(losses[-1]):
                raise UserError(f"The loss became {losses[-1]} at step {step}: lower the "
                                "learning rate.")
            now = time.perf_counter()
            tokens = int(batch["attention_mask"].sum()) * accelerator.num_processes
            seen_tokens += tokens
            eta = remaining.trained(tokens, now - last, now)  # seconds left, smoothed
            last = now
            if on_step and accelerator.is_main_process:
                on_step({"event": "step", "epoch": epoch, "step": step, "total_steps": total,
                         "loss": losses[-1], "lr": scheduler.get_last_lr()[0],
                         "progress": step / total, "eta_s": eta,
                         "elapsed_s": now - start_all})
        train_time += time.perf_counter() - t0
        record = {"event": "epoch", "epoch": epoch, "step": step, "total_steps": total,
                  "train_loss": sum(losses) / max(1, len(losses))}
        if val_encoded:
            t_eval = time.perf_counter()
            probs = predict_encoded(raw, val_encoded, pad_id, accelerator.device, eval_batch)
            remaining.evaluated(time.perf_counter() - t_eval, time.perf_counter())
            m = binary_metrics(val_data.labels, (probs >= 0.5).astype(int))
            record.update(val_accuracy=m.accuracy, val_f1=m.f1)
        result.history.append(record)
        better = (result.best_val_accuracy is None or not val_encoded
                  or record["val_accuracy"] > result.best_val_accuracy)
        if better:
            result.best_epoch = epoch
            result.best_val_accuracy = record.get("val_accuracy")
            if out_dir is not None:
                _save(accelerator, model, tokenizer, Path(out_dir), cfg)
        record["best"] = better
        if on_step and accelerator.is_main_process:
            now = time.perf_counter()
            on_step(dict(record, progress=step / total, elapsed_s=now - start_all,
                         eta_s=remaining.left(now)))
    result.steps = step
    result.train_seconds = train_time
    result.train_samples_per_s = seen / train_time if train_time > 0 else 0.0
    result.train_tokens_per_s = seen_tokens / train_time if train_time > 0 else 0.0
    if remaining.eval_s > 0:
        result.eval_tokens_per_s = remaining.evals_done * remaining.val_tokens / remaining.eval_s
    accelerator.wait_for_everyone()
    accelerator.free_memory()
    return result


def _save(accelerator, model, tokenizer, out: Path, cfg: TrainConfig) -> None:
    """Save the model (main process only): a LoRA adapter + head, or a full model folder."""
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    out.mkdir(parents=True, exist_ok=True)
    raw = accelerator.unwrap_model(model)
    raw.save_pretrained(str(out), safe_serialization=True)
    if cfg.method == "full":
        tokenizer.save_pretrained(str(out))


# What a fine-tuning form offers: defaults per method, the step of each number box, the hardware.
LEARNING_RATES = {"lora": TrainConfig.learning_rate, "full": 5e-5}  # default peak rate per method
FORM_STEPS = {"learning_rate": 1e-5, "epochs": 1, "batch_size": 1, "max_length": 16,
              "warmup": 0.05, "weight_decay": 0.01, "seed": 1}  # number boxes, in form order


def defaults(method: str = "lora") -> TrainConfig:
    """The default hyperparameters for a method (full fine-tuning wants a lower learning rate)."""
    return TrainConfig(method=method, learning_rate=LEARNING_RATES.get(method,
                                                                       TrainConfig.learning_rate))


@dataclass(frozen=True)
class Hardware:
    """What a training job on this server runs on."""

    cuda: bool  # a CUDA GPU is visible (bf16 mixed precision can be asked for)
    bf16: bool  # that GPU computes in bf16
    name: str  # the GPU's name, or "CPU"


def hardware() -> Hardware:
    """The GPU a training job would use, if any."""
    import torch

    if not torch.cuda.is_available():
        return Hardware(False, False, "CPU")
    return Hardware(True, bool(torch.cuda.is_bf16_supported()), torch.cuda.get_device_name(0))
