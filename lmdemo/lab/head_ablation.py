"""Head ablation: switch attention heads off and see what the model then predicts.

Each attention layer's heads write their outputs side by side into one projection (the layer's
"head mixer": GPT-2's attn.c_proj, Llama's self_attn.o_proj; see `lmdemo.lab.anatomy`). Ablating
head h of layer l changes columns `head_slice(h)` of that projection's input: "zero" sets them to 0
(the head says nothing), "mean" replaces them at every position by their mean over the positions
of the text (the head says its average thing, so only what it adds token by token is removed).
`head_ablation(...)` compares the next-token distribution before and after ablating any set of
(layer, head) pairs (top tokens, KL). `importance(...)` maps, for every head alone, the drop in the
log-probability of one target token at the last position (layers x heads). It is batched: within
one forward pass the batch grows at each layer's block by one copy of the clean residual stream per
head, and the mixer hook ablates a different head in each new copy — so every head costs only the
layers from its own onwards, and all of them share the matrix products (no one-forward-per-head
loop). Hooks act for the calling thread only, so other users of the shared model are unaffected.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import CAUSAL_KINDS
from lmdemo.lab.anatomy import thread_hooks

MODES = ("zero", "mean")
KINDS = CAUSAL_KINDS  # the models this works on


@dataclass(frozen=True)
class Limits:
    """Sizes head ablation accepts."""

    max_tokens: int = 128  # longest text (start token included)
    default_show: int = 10  # top tokens listed before/after
    max_show: int = 50
    batch_tokens: int = 16_384  # most rows x tokens one forward of the importance map carries
    top_heads: int = 10  # heads listed as most important


LIMITS = Limits()


# ----------------------------------------------------------------------------- results

@dataclass
class TokenProb:
    token: str  # decoded text of the token
    id: int
    prob: float


@dataclass
class HeadAblation:
    """The next-token distribution after a text, with and without some heads."""

    model: str
    text: str
    mode: str  # "zero" or "mean"
    heads: list[tuple[int, int]]  # the (layer, head) pairs ablated, sorted
    tokens: list[str]  # (T,) the tokens read, the start token first
    before: list[TokenProb]  # most likely next tokens of the intact model
    after: list[TokenProb]  # ... and with the heads ablated
    kl: float  # KL(before || after) of the next-token distribution, nats
    n_layers: int
    n_heads: int
    target: str = ""  # an optional single target token ...
    target_id: int | None = None
    target_logprob_before: float | None = None  # ... its log-probability (nats) before
    target_logprob_after: float | None = None  # ... and after

    def to_json(self) -> dict:
        out = asdict(self)
        out["heads"] = [list(h) for h in self.heads]
        return out

    def rows(self) -> list[dict]:
        """The top tokens before and after: the CSV export."""
        return [{"when": when, "rank": i + 1, "token": t.token, "id": t.id, "prob": t.prob}
                for when, tops in (("intact", self.before), ("ablated", self.after))
                for i, t in enumerate(tops)]


@dataclass
class ImportanceMap:
    """How much each head alone matters for one target token at the last position."""

    model: str
    text: str
    target: str
    target_id: int
    mode: str
    tokens: list[str]  # (T,) the tokens read, the start token first
    base_logprob: float  # log p(target) of the intact model, nats
    importance: np.ndarray  # (layers, heads) base_logprob - log p(target) with that head ablated
    top_heads: list[dict] = field(default_factory=list)  # [{layer, head, drop}] largest drop first

    @property
    def ablated_logprob(self) -> np.ndarray:
        return self.base_logprob - self.importance  # (layers, heads)

    def rows(self) -> list[dict]:
        """One row per head: the CSV export."""
        return [{"layer": la, "head": h, "drop_in_logprob": float(self.importance[la, h]),
                 "logprob_ablated": float(self.ablated_logprob[la, h])}
                for la in range(self.importance.shape[0]) for h in range(self.importance.shape[1])]

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "importance"}
        out["importance"] = self.importance.tolist()
        out["ablated_logprob"] = self.ablated_logprob.tolist()
        return out


# ----------------------------------------------------------------------------- validation

def check_mode(mode) -> str:
    mode = str(mode or "zero").strip().lower()
    if mode not in MODES:
        raise UserError(f"Unknown ablation {mode!r}: use one of {', '.join(MODES)}.")
    return mode


_HEAD = re.compile(r"[lL]?(\d+)(?:[.:][hH]?|[hH])(\d+)")


def parse_heads(text) -> list[tuple[int, int]]:
    """(layer, head) pairs from text such as "3.5, 10.2", "3:5" or "L3H5" (layer first), the
    items separated by commas, semicolons or spaces."""
    if not isinstance(text, str):
        raise UserError(f"Heads must be written as text like '3.5, 10.2', not {text!r}.")
    out = []
    for item in re.split(r"[,;\s]+", text.strip()):
        if not item:
            continue
        match = _HEAD.fullmatch(item)
        if match is None:
            raise UserError(f"Could not read {item!r} as a head: write each as layer.head, e.g. "
                            "'3.5, 10.2'.")
        out.append((int(match[1]), int(match[2])))
    return out


def check_heads(heads, n_layers: int, n_heads: int) -> list[tuple[int, int]]:
    """The (layer, head) pairs as sorted, distinct int tuples within the model, or a UserError."""
    if isinstance(heads, str):
        heads = parse_heads(heads)
    out = set()
    for pair in heads or []:
        try:
            layer, head = (int(x) for x in pair)
        except (TypeError, ValueError):
            raise UserError(f"Each head is a (layer, head) pair of whole numbers, not "
                            f"{pair!r}.") from None
        if not (0 <= layer < n_layers and 0 <= head < n_heads):
            raise UserError(f"There is no head {layer}.{head}: layers are 0..{n_layers - 1} and "
                            f"heads 0..{n_heads - 1}.")
        out.add((layer, head))
    return sorted(out)


def head_name(layer: int, head: int) -> str:
    """How a page names a head: "L3H5" (layer 3, head 5)."""
    return f"L{int(layer)}H{int(head)}"


def head_names(n_layers: int, n_heads: int) -> list[str]:
    """Every head of a model of n_layers × n_heads, named as `head_name`, layer by layer."""
    return [head_name(la, h) for la in range(n_layers) for h in range(n_heads)]


def within_model(items, n_layers: int, n_heads: int) -> tuple[list[str], list[str]]:
    """Heads written by a visitor or a link (strings such as "L3H5", "3.5" or "L1H2, L0H0") sorted
    into those of this model, as `head_name`s in the order given (each once), and the items that
    are not: unreadable, or beyond its n_layers × n_heads (a link made for a bigger model)."""
    kept: list[str] = []
    dropped: list[str] = []
    for item in [items] if isinstance(items, str) else list(items or []):
        for part in re.split(r"[,;\s]+", str(item).strip()):
            if not part:
                continue
            match = _HEAD.fullmatch(part)
            if match and int(match[1]) < n_layers and int(match[2]) < n_heads:
                name = head_name(match[1], match[2])
                kept += [name] if name not in kept else []
            else:
                dropped.append(part)
    return kept, dropped


def target_id(tokenizer, target) -> int:
    """The one token id of `target`, or a UserError when it is not exactly one token."""
    if not isinstance(target, str):
        raise UserError(f"The target must be a string, not {type(target).__name__}.")
    ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if len(ids) != 1:
        raise UserError(f"{target!r} is {len(ids)} tokens; pick a single token such as ' Paris'.")
    return int(ids[0])


def _check_model(loaded):
    from lmdemo.lab.anatomy import anatomy

    if loaded.spec.kind not in KINDS:
        raise UserError(f"{loaded.spec.id!r} is not a causal transformer; pick smollm2 or "
                        "tiny-gpt.")
    return anatomy(loaded.model)


def prompt_ids(loaded, text) -> list[int]:
    """[start] + the text's ids (lmdemo.lab.next_token.encode), or a UserError when too long."""
    from lmdemo.lab.next_token import encode

    ctx = encode(loaded, text)
    if ctx.truncated or len(ctx.ids) > LIMITS.max_tokens:
        raise UserError(f"The text is too long for head ablation: at most {LIMITS.max_tokens} "
                        "tokens. Shorten it.")
    return ctx.ids


def _load(model_id: str):
    from lmdemo.core.models import load

    return load(model_id, kinds=KINDS)


# ----------------------------------------------------------------------------- hooks

def _ablate(x, mask, mode: str):
    """x (B, T, H*D) with the True columns of mask (B, 1, H*D) zeroed or mean-ablated."""
    import torch

    if mode == "zero":
        return x.masked_fill(mask, 0.0)
    return torch.where(mask, x.mean(dim=1, keepdim=True), x)  # mean over positions, per row


def _mask(rows: list[list[int]], an, device):
    """(B, 1, H*D) bool: row b ablates the heads rows[b] (a list of head indices)."""
    import torch

    mask = torch.zeros(len(rows), 1, an.n_heads * an.head_dim, dtype=torch.bool, device=device)
    for b, heads in enumerate(rows):
        for h in heads:
            mask[b, 0, an.head_slice(h)] = True
    return mask


def _last_logits(loaded, x):
    """Logits (B, V) at the last position, float32, from one forward over x (B, T)."""
    import torch

    with torch.inference_mode():
        try:
            out = loaded.model(input_ids=x, use_cache=False, logits_to_keep=1)
        except TypeError:  # an architecture without `logits_to_keep`
            out = loaded.model(input_ids=x, use_cache=False)
    return out.logits[:, -1].float()  # (B, V)


def ablated_logits(loaded, ids: list[int], head_sets, mode: str = "zero") -> np.ndarray:
    """Last-position logits (B, V) for B copies of `ids`, copy b with the heads head_sets[b]
    (a list of (layer, head) pairs) ablated, all in one batched forward."""
    import torch

    an = _check_model(loaded)
    mode = check_mode(mode)
    sets = [check_heads(s, an.n_layers, an.n_heads) for s in head_sets]
    pairs = []
    for layer in range(an.n_layers):
        rows = [[h for lay, h in s if lay == layer] for s in sets]
        if any(rows):
            mask = _mask(rows, an, loaded.device)

            def pre(_module, args, mask=mask):
                return (_ablate(args[0], mask, mode), *args[1:])

            pairs.append((an.head_mixers[layer], "pre", pre, False))
    x = torch.tensor([ids], dtype=torch.long, device=loaded.device).expand(len(sets), -1)
    with thread_hooks(*pairs):
        return _last_logits(loaded, x).cpu().numpy()  # (B, V)


def _hidden_arg(args, kwargs):
    return args[0] if args else kwargs["hidden_states"]


def _with_hidden(args, kwargs, hidden):
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def _grown_logprobs(loaded, an, ids: list[int], layers: list[int], target: int,
                    mode: str) -> np.ndarray:
    """log p(target) at the last position: row 0 intact, then for each layer in `layers` (in
    order) one row per head of it with that head alone ablated — (1 + len(layers) * H,) from one
    forward whose batch grows at each of these layers' blocks by H copies of the clean row."""
    import torch

    n = an.n_heads
    pairs = []
    for i, layer in enumerate(layers):
        # rows before this layer's block: 1 + i * n; after it: 1 + (i + 1) * n
        rows = [[]] * (1 + i * n) + [[h] for h in range(n)]
        mask = _mask(rows, an, loaded.device)  # (1 + (i + 1) n, 1, H*D)

        def grow(_module, args, kwargs):
            hidden = _hidden_arg(args, kwargs)  # (B, T, D), row 0 the clean stream
            grown = torch.cat([hidden, hidden[:1].expand(n, -1, -1)], dim=0)  # (B + H, T, D)
            return _with_hidden(args, kwargs, grown)

        def pre(_module, args, mask=mask):
            return (_ablate(args[0], mask, mode), *args[1:])

        pairs += [(an.blocks[layer], "pre", grow, True), (an.head_mixers[layer], "pre", pre, False)]
    x = torch.tensor([ids], dtype=torch.long, device=loaded.device)  # (1, T)
    with thread_hooks(*pairs):
        logits = _last_logits(loaded, x)  # (1 + len(layers) H, V)
    if logits.shape[0] != 1 + len(layers) * n:
        raise RuntimeError(f"batch grew to {logits.shape[0]}, not {1 + len(layers) * n}")
    return torch.log_softmax(logits, dim=-1)[:, target].double().cpu().numpy()


def importance_map(loaded, ids: list[int], target: int, mode: str = "zero",
                   batch_tokens: int = LIMITS.batch_tokens) -> tuple[float, np.ndarray]:
    """(base log p(target), importance (layers, heads)) at the last position of `ids`: the drop in
    log p(target) when each head alone is ablated. Layers are taken in chunks so that no forward
    carries more than `batch_tokens` rows x tokens."""
    an = _check_model(loaded)
    mode = check_mode(mode)
    per_chunk = max(1, (batch_tokens // max(1, len(ids)) - 1) // an.n_heads)
    base, drops = None, []
    for start in range(0, an.n_layers, per_chunk):
        layers = list(range(start, min(an.n_layers, start + per_chunk)))
        lp = _grown_logprobs(loaded, an, ids, layers, target, mode)
        base = lp[0] if base is None else base
        drops.append(lp[0] - lp[1:].reshape(len(layers), an.n_heads))
    return float(base), np.concatenate(drops, axis=0)  # (layers, heads)


# ----------------------------------------------------------------------------- services

def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _top(tokenizer, probs: np.ndarray, show: int) -> list[TokenProb]:
    from lmdemo.lab.next_token import token_texts, top_ids

    order = top_ids(probs, show)
    return [TokenProb(t, int(i), float(probs[i]))
            for t, i in zip(token_texts(tokenizer, order), order, strict=True)]


def head_ablation_of(loaded, text: str, heads, mode: str = "zero",
                     show: int = LIMITS.default_show, target: str | None = None) -> HeadAblation:
    """`head_ablation` for an already loaded model."""
    from lmdemo.lab.next_token import check_show, token_texts

    an = _check_model(loaded)
    mode = check_mode(mode)
    heads = check_heads(heads, an.n_layers, an.n_heads)
    show = check_show(show)
    tid = target_id(loaded.tokenizer, target) if target else None
    ids = prompt_ids(loaded, text)
    logp = _log_softmax(ablated_logits(loaded, ids, [[], heads], mode))  # (2, V)
    p = np.exp(logp)
    kl = float(max(0.0, (p[0] * (logp[0] - logp[1])).sum()))
    return HeadAblation(
        model=loaded.spec.id, text=text, mode=mode, heads=heads,
        tokens=token_texts(loaded.tokenizer, ids), before=_top(loaded.tokenizer, p[0], show),
        after=_top(loaded.tokenizer, p[1], show), kl=kl, n_layers=an.n_layers,
        n_heads=an.n_heads, target=target or "", target_id=tid,
        target_logprob_before=None if tid is None else float(logp[0, tid]),
        target_logprob_after=None if tid is None else float(logp[1, tid]))


def head_ablation(model_id: str, text: str, heads, mode: str = "zero",
                  show: int = LIMITS.default_show, target: str | None = None) -> HeadAblation:
    """The next-token distribution after `text` with and without the heads (a list of (layer,
    head) pairs, or text like "3.5, 10.2") ablated; `target` (one token) adds its log-prob."""
    return head_ablation_of(_load(model_id), text, heads, mode, show, target)


def importance_of(loaded, text: str, target: str, mode: str = "zero") -> ImportanceMap:
    """`importance` for an already loaded model."""
    from lmdemo.lab.next_token import token_texts

    _check_model(loaded)
    mode = check_mode(mode)
    tid = target_id(loaded.tokenizer, target)
    ids = prompt_ids(loaded, text)
    base, imp = importance_map(loaded, ids, tid, mode)
    order = np.argsort(-imp, axis=None, kind="stable")[:LIMITS.top_heads]
    top = [{"layer": int(i // imp.shape[1]), "head": int(i % imp.shape[1]),
            "drop": float(imp.flat[i])} for i in order]
    return ImportanceMap(model=loaded.spec.id, text=text, target=target, target_id=tid,
                         mode=mode, tokens=token_texts(loaded.tokenizer, ids), base_logprob=base,
                         importance=imp, top_heads=top)


def importance(model_id: str, text: str, target: str, mode: str = "zero") -> ImportanceMap:
    """Layers x heads map of how much log p(target) at the end of `text` drops when each head
    alone is ablated (zero or mean)."""
    return importance_of(_load(model_id), text, target, mode)
