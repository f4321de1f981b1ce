"""Activation patching: which layer and position carry the fact that decides the answer.

Two prompts of the same token length differ in a word: the clean one ("The capital of France is")
and the corrupted one ("The capital of Italy is"). Their answers are the top next token of each
run (" Paris" and " Rome"), unless given. The measure is the logit difference at the last
position, logit(clean answer) - logit(corrupt answer): high on the clean run, low on the
corrupted one. Patching copies the clean run's residual stream at one (depth, position) into the
corrupted run — depth 0 is the embedding output (the input of block 0), depth l the output of
block l, as in the logit lens — and reports the share of the difference that comes back:
(patched - corrupt) / (clean - corrupt), 1 when the patch restores the clean answer's lead, 0
when it changes nothing. The grid covers every depth and position; the patched runs go through
the model in batches of patched copies of the corrupted prompt (`patch_logits`), not one by one.
Only causal transformers (GPT-2 and Llama style) have a residual stream to patch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import CAUSAL_KINDS
from lmdemo.lab.anatomy import anatomy, thread_hooks
from lmdemo.lab.lens import a_kind, hidden_of, read_ids, read_out, residual_stream, single_token
from lmdemo.lab.next_token import token_texts

KINDS = CAUSAL_KINDS  # the models this works on

# (clean, corrupt) pairs of the same token length on smollm2 whose clean and corrupted runs lead
# it to different answers (clean answer / corrupt answer, logit differences on the clean and the
# corrupted run). On tiny-gpt only the last two lead to different answers (the Eiffel pair is not
# even the same length there): it knows no geography.
PRESETS = [
    ("The capital of France is the city of",  # " Paris" / " Rome": +6.6 / -10.1
     "The capital of Italy is the city of"),
    ("The Eiffel Tower is in the city of",  # " Paris" / " Rome": +4.2 / -10.1
     "The Colosseum is in the city of"),
    ("When Mary and John went to the store, John gave a drink to",  # " Mary" / " John"
     "When Mary and John went to the store, Mary gave a drink to"),
    ("The opposite of hot is", "The opposite of up is"),  # " cold" / " down": +10.1 / -11.6
    ("The opposite of big is", "The opposite of fast is"),  # " small" / " slow": +9.7 / -8.4
]


@dataclass(frozen=True)
class PatchLimits:
    """Sizes of one patching grid."""

    max_tokens: int = 64  # tokens per prompt, the start token included (cost ~ depths * T^2)
    batch_tokens: int = 4096  # tokens per batched forward pass of patched copies
    min_gap: float = 1e-4  # smallest clean-minus-corrupt logit difference a share is taken of


LIMITS = PatchLimits()


@dataclass
class PatchResult:
    """The share of the clean answer's lead that patching each (depth, position) recovers."""

    model: str
    clean: str
    corrupt: str
    tokens: list[str]  # (T,) the clean prompt's tokens, the start token first
    corrupt_tokens: list[str]  # (T,) the corrupted prompt's tokens
    depths: list[str]  # (depths,) row labels: "embedding", "layer 1", ..., "layer L"
    recovered: np.ndarray  # (depths, T) (patched - corrupt) / (clean - corrupt)
    patched_diff: np.ndarray  # (depths, T) the logit difference of each patched run
    clean_diff: float  # logit(clean answer) - logit(corrupt answer) on the clean run
    corrupt_diff: float  # ... and on the corrupted run
    clean_answer: str  # the token the clean run leads to (or the one given)
    clean_answer_id: int
    corrupt_answer: str
    corrupt_answer_id: int
    message: str = ""

    @property
    def differs(self) -> list[bool]:
        """(T,) whether the two prompts' tokens differ at each position."""
        return [a != b for a, b in zip(self.tokens, self.corrupt_tokens, strict=True)]

    def rows(self) -> list[dict]:
        """One row per (depth, position): the CSV export."""
        return [{"depth": d, "position": t, "clean_token": self.tokens[t],
                 "corrupt_token": self.corrupt_tokens[t], "recovered": float(self.recovered[i, t]),
                 "logit_diff": float(self.patched_diff[i, t])}
                for i, d in enumerate(self.depths) for t in range(len(self.tokens))]

    def to_json(self) -> dict:
        return {"model": self.model, "clean": self.clean, "corrupt": self.corrupt,
                "tokens": self.tokens, "corrupt_tokens": self.corrupt_tokens,
                "depths": self.depths, "recovered": self.recovered.tolist(),
                "patched_diff": self.patched_diff.tolist(), "clean_diff": self.clean_diff,
                "corrupt_diff": self.corrupt_diff,
                "clean_answer": {"token": self.clean_answer, "id": self.clean_answer_id},
                "corrupt_answer": {"token": self.corrupt_answer, "id": self.corrupt_answer_id},
                "message": self.message}


# ----------------------------------------------------------------------------- checks

def check_model(loaded) -> None:
    """A UserError unless `loaded` is a causal transformer with a residual stream to patch."""
    kind = loaded.spec.kind
    if kind == "recurrent-lm":
        raise UserError(f"Activation patching copies a transformer's residual stream at one layer "
                        f"and position; {loaded.spec.id!r} is a recurrent model, whose single "
                        "state has no layers of that kind. Pick smollm2 or tiny-gpt.")
    if kind not in KINDS:
        raise UserError(f"Activation patching compares a language model's next-token "
                        f"predictions; {loaded.spec.id!r} is {a_kind(kind)}, which predicts "
                        "no next token. Pick a causal model such as smollm2 or tiny-gpt.")
    anatomy(loaded.model)  # a UserError for architectures it cannot look inside


def prompt_ids(loaded, clean: str, corrupt: str) -> tuple[list[int], list[int]]:
    """The two prompts' ids, checked to have the same number of tokens."""
    clean_ids, _ = read_ids(loaded, clean, LIMITS.max_tokens)
    corrupt_ids, _ = read_ids(loaded, corrupt, LIMITS.max_tokens)
    if len(clean_ids) != len(corrupt_ids):
        shown = [token_texts(loaded.tokenizer, ids[1:] if ids[:1] == clean_ids[:1] else ids)
                 for ids in (clean_ids, corrupt_ids)]
        raise UserError(
            f"The clean prompt is {len(clean_ids)} tokens and the corrupted one "
            f"{len(corrupt_ids)} for {loaded.spec.id!r}; patching swaps position by position, so "
            f"they must be the same length. Clean: {shown[0]}; corrupted: {shown[1]}. Swap in a "
            "word that splits into as many tokens as the one it replaces.")
    if clean_ids == corrupt_ids:
        raise UserError("The clean and corrupted prompts are the same tokens; change a word in "
                        "the corrupted one.")
    return clean_ids, corrupt_ids


# ----------------------------------------------------------------------------- patched runs

def _patch_hooks(parts, clean_states, plan, offset: int) -> list[tuple]:
    """Hooks that write the clean stream into chosen rows of a batch that holds the tokens from
    `offset` on: `plan[depth]` = (rows, positions) index tensors to overwrite at that depth.
    Returns the hook specs for `thread_hooks`."""

    def overwrite(hidden, depth):  # hidden: (B, T - offset, d)
        rows, pos = plan[depth]
        hidden = hidden.clone()
        hidden[rows, pos - offset] = clean_states[depth, pos]  # (k, d) <- (k, d)
        return hidden

    def at_input(module, args, kwargs):
        if args:
            return (overwrite(args[0], 0),) + tuple(args[1:]), kwargs
        return args, {**kwargs, "hidden_states": overwrite(kwargs["hidden_states"], 0)}

    def at_output(depth):
        def hook(module, args, output):
            new = overwrite(hidden_of(output), depth)
            return (new,) + tuple(output[1:]) if isinstance(output, tuple) else new
        return hook

    specs = [(parts.blocks[0], "pre", at_input, True)] if 0 in plan else []
    return specs + [(parts.blocks[d - 1], "post", at_output(d), False) for d in plan if d > 0]


def _prefix_cache(model, ids: list[int], rows: int, device):
    """The corrupted prompt's key/value cache of `ids` (its unpatched beginning), repeated for
    `rows` copies; None when there is nothing to cache or the cache cannot be repeated."""
    import torch

    if not ids:
        return None
    x = torch.tensor([ids], dtype=torch.long, device=device)  # (1, p)
    cache = model(input_ids=x, use_cache=True, logits_to_keep=1).past_key_values
    repeat = getattr(cache, "batch_repeat_interleave", None)
    if repeat is None:
        return None
    repeat(rows)
    return cache


def _run_chunk(loaded, parts, corrupt_ids, clean_states, chunk, offset: int):
    """Last-position logits (len(chunk), V) of patched copies of the corrupted prompt. Every patch
    in `chunk` starts at or after `offset`, so the tokens before it are read once, unpatched, into
    a cache (a causal model's earlier positions never see later ones) and only the rest is run."""
    import torch

    plan: dict[int, tuple[list[int], list[int]]] = {}
    for row, (d, ps) in enumerate(chunk):
        rows, pos = plan.setdefault(d, ([], []))
        rows += [row] * len(ps)
        pos += list(ps)
    dev = loaded.device
    plan_t = {d: (torch.tensor(r, device=dev), torch.tensor(p, device=dev))
              for d, (r, p) in plan.items()}
    with torch.inference_mode():
        cache = _prefix_cache(loaded.model, corrupt_ids[:offset], len(chunk), dev)
        if cache is None:
            offset = 0
        x = torch.tensor([corrupt_ids[offset:]] * len(chunk), dtype=torch.long,
                         device=dev)  # (B, T - offset)
        kw = {"past_key_values": cache, "use_cache": True} if cache is not None else {
            "use_cache": False}
        with thread_hooks(*_patch_hooks(parts, clean_states, plan_t, offset)):
            out = loaded.model(input_ids=x, logits_to_keep=1, **kw)
        return out.logits[:, -1].float().cpu().numpy()  # (B, V)


def patch_logits(loaded, clean_ids: list[int], corrupt_ids: list[int], patches,
                 clean_states=None, progress=None) -> np.ndarray:
    """Last-position logits (len(patches), V) of the corrupted prompt, each run with one patch:
    `patches[i]` = (depth, positions) copies the clean run's residual stream at that depth and
    those positions. Patches that start at the same position go through the model together, in
    batches of up to `LIMITS.batch_tokens` tokens, reading only the tokens from that position on;
    `progress(done, total)` is called after each batch."""
    parts = anatomy(loaded.model)
    if clean_states is None:
        clean_states = residual_stream(loaded, clean_ids)  # (L+1, T, d)
    patches = [(int(d), tuple(int(p) for p in ps)) for d, ps in patches]
    width = len(corrupt_ids)
    for d, ps in patches:
        if not ps or not 0 <= d <= parts.n_layers or not all(0 <= p < width for p in ps):
            raise UserError(f"Patch ({d}, {ps}) is outside the grid: depths 0 to "
                            f"{parts.n_layers}, positions 0 to {width - 1}.")
    groups: dict[int, list[int]] = {}  # first patched position -> indices into patches
    for i, (_, ps) in enumerate(patches):
        groups.setdefault(min(ps), []).append(i)
    out: list = [None] * len(patches)
    done = 0
    for offset, members in sorted(groups.items()):
        per_batch = max(1, LIMITS.batch_tokens // (width - offset))
        for start in range(0, len(members), per_batch):
            part = members[start:start + per_batch]
            logits = _run_chunk(loaded, parts, corrupt_ids, clean_states,
                                [patches[i] for i in part], offset)  # (B, V)
            for i, row in zip(part, logits, strict=True):
                out[i] = row
            done += len(part)
            if progress is not None:
                progress(done, len(patches))
    return np.stack(out).astype(np.float64)  # (len(patches), V)


def _cells_to_run(clean_states, corrupt_states) -> list[tuple[int, int]]:
    """The (depth, position) cells whose patch can change the last position's logits. The others
    are no-ops by construction, so they are not run: where the two streams are already equal
    (every position before the first differing token, in a causal model), and the last block's
    output anywhere but the last position (the final norm and the unembedding read each position
    on its own; at the last position that patch gives the clean logits exactly)."""
    import torch

    same = (clean_states == corrupt_states).all(dim=-1)  # (L+1, T)
    last = clean_states.shape[0] - 1
    return [(int(d), int(p)) for d, p in torch.nonzero(~same[:last]).tolist()]


# ----------------------------------------------------------------------------- services

def patch(model_id: str, clean: str, corrupt: str, clean_answer: str | None = None,
          corrupt_answer: str | None = None, progress=None) -> PatchResult:
    """The patching grid for a clean and a corrupted prompt (model loaded through core.models)."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import get_spec

    spec = get_spec(model_id)
    if spec.source != "hub" and spec.kind == "recurrent-lm":
        raise UserError(f"Activation patching copies a transformer's residual stream at one layer "
                        f"and position; {spec.id!r} is a recurrent model, whose single state has "
                        "no layers of that kind. Pick smollm2 or tiny-gpt.")
    if spec.source != "hub" and spec.kind not in KINDS:
        raise UserError(f"Activation patching compares a language model's next-token "
                        f"predictions; {spec.id!r} is {a_kind(spec.kind)}, which predicts no next "
                        "token. Pick a causal model such as smollm2 or tiny-gpt.")
    return patch_of(load(spec.id, kinds=KINDS), clean, corrupt, clean_answer, corrupt_answer,
                    progress)


def patch_of(loaded, clean: str, corrupt: str, clean_answer: str | None = None,
             corrupt_answer: str | None = None, progress=None) -> PatchResult:
    """The patching grid under an already loaded causal transformer."""
    check_model(loaded)
    clean_ids, corrupt_ids = prompt_ids(loaded, clean, corrupt)
    clean_states = residual_stream(loaded, clean_ids)  # (L+1, T, d)
    corrupt_states = residual_stream(loaded, corrupt_ids)  # (L+1, T, d)
    clean_logits = read_out(loaded, clean_states[-1, -1]).cpu().numpy().astype(np.float64)  # (V,)
    corrupt_logits = read_out(loaded, corrupt_states[-1, -1]).cpu().numpy().astype(np.float64)
    good = (single_token(loaded, clean_answer, "The clean answer") if clean_answer
            else int(np.argmax(clean_logits)))
    bad = (single_token(loaded, corrupt_answer, "The corrupted answer") if corrupt_answer
           else int(np.argmax(corrupt_logits)))
    good_text, bad_text = token_texts(loaded.tokenizer, [good, bad])
    if good == bad:
        raise UserError(f"Both prompts lead to the same answer {good_text!r}, so there is no "
                        "difference to recover. Change the corrupted prompt so that it leads "
                        "elsewhere, or name the two answers.")
    clean_diff = float(clean_logits[good] - clean_logits[bad])
    corrupt_diff = float(corrupt_logits[good] - corrupt_logits[bad])
    if clean_diff - corrupt_diff < LIMITS.min_gap:
        raise UserError(f"The clean prompt does not favour {good_text!r} over {bad_text!r} more "
                        f"than the corrupted one does (logit differences {clean_diff:.3f} and "
                        f"{corrupt_diff:.3f}), so there is nothing to recover. Pick prompts or "
                        "answers where it does.")
    n_depths, width = clean_states.shape[0], len(clean_ids)
    patched = np.full((n_depths, width), corrupt_diff)  # (depths, T): a no-op patch's value
    patched[-1, -1] = clean_diff  # the last block's output at the last position: the clean logits
    cells = _cells_to_run(clean_states, corrupt_states)
    if cells:
        logits = patch_logits(loaded, clean_ids, corrupt_ids, [(d, (p,)) for d, p in cells],
                              clean_states, progress)  # (cells, V)
        rows, cols = np.array(cells).T
        patched[rows, cols] = logits[:, good] - logits[:, bad]
    recovered = (patched - corrupt_diff) / (clean_diff - corrupt_diff)  # (depths, T)
    return PatchResult(
        model=loaded.spec.id, clean=clean, corrupt=corrupt,
        tokens=token_texts(loaded.tokenizer, clean_ids),
        corrupt_tokens=token_texts(loaded.tokenizer, corrupt_ids),
        depths=["embedding"] + [f"layer {i + 1}" for i in range(n_depths - 1)],
        recovered=recovered, patched_diff=patched, clean_diff=clean_diff,
        corrupt_diff=corrupt_diff, clean_answer=good_text, clean_answer_id=good,
        corrupt_answer=bad_text, corrupt_answer_id=bad)
