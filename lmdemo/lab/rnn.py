"""The RNN-versus-transformer lab: a recurrent model's numbers on the user's text, measured.

`recurrence(model_id, text, step)` runs a vanilla tanh RNN (`tiny-rnn`) over the text, returns its
hidden state at every step, and recomputes one step by hand — h_t = tanh(W·x_t + U·h_{t−1} + b) with
the model's real W, U and b — reporting how far that is from the model's own h_t (and from a full
hand-run recurrence). `gradient_norms(model_ids, text)` measures with autograd how strongly the loss
of the last token depends on the hidden state at each earlier step, ‖∂loss_T/∂h_t‖, for RNN, LSTM
and GRU, with the path length (steps between t and T) that the gradient has to travel; attention's
path is always one step. `timing(model_id, text)` times the same input both ways, on the device
the model runs on: T dependent recurrent steps against one parallel attention product
softmax(QKᵀ/√d)·V; with the times it counts what does not depend on the device — the dependent
steps (T against 1 per layer) and the multiply-adds (attention does more). `path_length(text)`
counts the steps between the first and the last token. `recurrence_steps(model_id, text)` keeps
every step's parts at once, so a page can move through the steps without recomputing; small
helpers (`installed`, `recurrent_models`) answer what a page asks before it computes.
Results are plain dataclasses and numpy arrays.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from lmdemo.core.errors import UserError
from lmdemo.core.registry import RECURRENT_KINDS

KINDS = RECURRENT_KINDS
RNN_MODEL = "tiny-rnn"  # the vanilla tanh RNN whose steps are recomputed by hand
GRADIENT_MODELS = ("tiny-rnn", "tiny-lstm", "tiny-gru")  # compared by default
MAX_TOKENS = 128  # longest text the lab reads (gradients are taken step by step)
TIMING_LENGTHS = (16, 64, 256, 1024)  # sequence lengths of the scaling curve
MATCH_TOLERANCE = 1e-4  # a hand computation within this of the model reproduces it
STEP_PARTS = ("unit", "wx", "uh", "b", "pre", "h_manual", "h_model")  # columns of step_table


@dataclass
class RecurrenceResult:
    """Hidden states over time, and one step recomputed by hand."""

    model_id: str
    tokens: list[str]  # T tokens (the first is the start token)
    hidden: np.ndarray  # (T, H) the model's top-layer hidden state at every step
    step: int  # which step is recomputed
    x: np.ndarray  # (E,) the input of that step (the token's embedding for a 1-layer RNN)
    h_prev: np.ndarray  # (H,) the state before it (zeros at step 0)
    wx: np.ndarray  # (H,) W·x_t
    uh: np.ndarray  # (H,) U·h_{t−1}
    b: np.ndarray  # (H,) b = b_ih + b_hh
    pre: np.ndarray  # (H,) W·x_t + U·h_{t−1} + b
    h_manual: np.ndarray  # (H,) tanh(pre)
    h_model: np.ndarray  # (H,) what the model itself computed
    step_error: float  # max |h_manual − h_model|
    run_error: float  # max over every step of |hand-run recurrence − model|
    w_shape: tuple[int, int]
    u_shape: tuple[int, int]
    truncated: bool = False
    message: str = ""

    @property
    def reproduced(self) -> bool:
        """The hand computation equals the model's state up to floating-point rounding."""
        return max(self.step_error, self.run_error) < MATCH_TOLERANCE

    def step_table(self, units: int) -> dict[str, np.ndarray]:
        """The parts of this step for the first `units` hidden units, keyed as STEP_PARTS."""
        n = min(units, len(self.pre))
        return {"unit": np.arange(n), "wx": self.wx[:n], "uh": self.uh[:n], "b": self.b[:n],
                "pre": self.pre[:n], "h_manual": self.h_manual[:n], "h_model": self.h_model[:n]}


@dataclass
class RecurrenceSteps:
    """Every step of a vanilla RNN on a text with its parts, so one step can be shown at a time."""

    model_id: str
    tokens: list[str]  # T tokens (the first is the start token)
    hidden: np.ndarray  # (T, H) the model's top-layer hidden state at every step
    inputs: np.ndarray  # (T, E) each step's input to the top layer
    wx: np.ndarray  # (T, H) W·x_t
    uh: np.ndarray  # (T, H) U·h_{t−1} (h_{−1} = 0)
    b: np.ndarray  # (H,) b = b_ih + b_hh
    pre: np.ndarray  # (T, H) W·x_t + U·h_{t−1} + b
    h_manual: np.ndarray  # (T, H) tanh(pre)
    run_error: float  # max over every step of |hand-run recurrence − model|
    w_shape: tuple[int, int]
    u_shape: tuple[int, int]
    truncated: bool = False
    message: str = ""

    def at(self, step: int | None = None) -> RecurrenceResult:
        """Step `step` (the last when None) recomputed by hand, as a RecurrenceResult."""
        T = len(self.tokens)
        t = T - 1 if step is None else int(step)
        if not 0 <= t < T:
            raise UserError(f"Step {t} does not exist: the text has {T} steps (0..{T - 1}).")
        h_prev = self.hidden[t - 1] if t > 0 else np.zeros_like(self.hidden[0])
        return RecurrenceResult(
            model_id=self.model_id, tokens=self.tokens, hidden=self.hidden, step=t,
            x=self.inputs[t], h_prev=h_prev, wx=self.wx[t], uh=self.uh[t], b=self.b,
            pre=self.pre[t], h_manual=self.h_manual[t], h_model=self.hidden[t],
            step_error=float(np.abs(self.h_manual[t] - self.hidden[t]).max()),
            run_error=self.run_error, w_shape=self.w_shape, u_shape=self.u_shape,
            truncated=self.truncated, message=self.message)


@dataclass
class GradientResult:
    """‖∂loss_T/∂h_t‖ for each earlier step t, one row per model."""

    model_ids: list[str]
    archs: list[str]
    tokens: list[str]  # T tokens read; the loss is that of predicting the last one
    norms: np.ndarray  # (models, T−1) gradient norm w.r.t. the hidden state after token t
    distance: np.ndarray  # (T−1,) steps from t to the prediction: the RNN's path length
    loss: list[float]  # the loss (nats) of the last token under each model
    truncated: bool = False
    message: str = ""

    def decay(self) -> list[float]:
        """Per model: the gradient norm at the first token divided by that at the last step."""
        return [float(row[0] / row[-1]) if row[-1] > 0 else float("nan") for row in self.norms]

    def rows(self) -> list[dict]:
        out = []
        for m, model_id in enumerate(self.model_ids):
            for t, d in enumerate(self.distance):
                out.append({"model": model_id, "step": t, "token": self.tokens[t],
                            "steps_back": int(d), "attention_path": 1,
                            "grad_norm": float(self.norms[m, t])})
        return out


def rnn_multiply_adds(n: int, width: int, inputs: int) -> int:
    """Multiply-adds of one recurrent layer over n tokens: W·x_t (inputs wide) and U·h_{t−1}."""
    return n * width * (inputs + width)


def attention_multiply_adds(n: int, width: int, inputs: int) -> int:
    """Multiply-adds of one attention over n tokens: the Q, K, V projections, then QKᵀ and the
    weights times V — n² pairs, each `width` wide (the causal mask's zeros are computed too)."""
    return 3 * n * inputs * width + 2 * n * n * width


@dataclass
class TimingResult:
    """Seconds for T dependent recurrent steps versus one parallel attention product, measured on
    one device; and what is counted, whatever the device: dependent steps and multiply-adds."""

    model_id: str
    lengths: list[int]  # sequence lengths timed (the first is the user's text)
    loop_s: list[float]  # h_t = tanh(W x_t + U h_{t−1} + b) one step at a time, in Python
    kernel_s: list[float]  # the same recurrence inside torch's own RNN kernel (still sequential)
    attention_s: list[float]  # softmax(QKᵀ/√d)·V with a causal mask: one batch of matrix products
    hidden_size: int
    repeats: int
    input_size: int = 0  # width of x_t (the embedding); 0: the hidden size
    device: str = "cpu"  # where it was timed: "cpu", "cuda", "mps"
    device_name: str = ""  # e.g. "NVIDIA H200" or "CPU"
    threads: int = 1  # torch's CPU threads (the parallel hardware a CPU run can use)

    def speedups(self) -> list[float]:
        """Per length: the recurrent loop's time divided by attention's (> 1: attention is
        faster)."""
        return [a / c for a, c in zip(self.loop_s, self.attention_s, strict=True)]

    def attention_slower_at(self) -> list[int]:
        """The lengths at which attention took longer than the recurrent loop on this device."""
        return [n for n, r in zip(self.lengths, self.speedups(), strict=True) if r < 1]

    @property
    def rnn_steps(self) -> list[int]:
        """Dependent steps of the recurrence: h_t waits for h_{t−1}, so T of them."""
        return list(self.lengths)

    @property
    def attention_steps(self) -> list[int]:
        """Dependent steps of one attention layer: 1, whatever T (a model has one per layer)."""
        return [1] * len(self.lengths)

    @property
    def rnn_work(self) -> list[int]:
        return [rnn_multiply_adds(n, self.hidden_size, self.input_size or self.hidden_size)
                for n in self.lengths]

    @property
    def attention_work(self) -> list[int]:
        return [attention_multiply_adds(n, self.hidden_size, self.input_size or self.hidden_size)
                for n in self.lengths]

    def rows(self) -> list[dict]:
        return [{"tokens": n, "sequential_steps": n, "parallel_steps": 1,
                 "rnn_multiply_adds": rw, "attention_multiply_adds": aw,
                 "rnn_loop_ms": a * 1e3, "rnn_kernel_ms": b * 1e3, "attention_ms": c * 1e3,
                 "device": self.device_name or self.device}
                for n, a, b, c, rw, aw in zip(self.lengths, self.loop_s, self.kernel_s,
                                              self.attention_s, self.rnn_work,
                                              self.attention_work, strict=True)]


def _encode(loaded, text: str) -> tuple[list[int], bool, str]:
    """The text as the next-token engine reads it (start token first), cut to the lab's
    MAX_TOKENS from the left; the ids, whether it was cut, and the message."""
    from lmdemo.lab.next_token import encode

    ctx = encode(loaded, text or "")
    if len(ctx.ids) < 2:
        raise UserError("Type a few words: the lab needs at least one token of text.")
    if len(ctx.ids) > MAX_TOKENS:
        return ctx.ids[-MAX_TOKENS:], True, (f"The text has {len(ctx.ids)} tokens; the lab reads "
                                             f"the last {MAX_TOKENS}.")
    return ctx.ids, ctx.truncated, ctx.message


def _tokens(loaded, ids: list[int]) -> list[str]:
    from lmdemo.lab.generation import token_text

    return [token_text(loaded.tokenizer, i) for i in ids]


def _rnn_weights(rnn, layer: int):
    """W (H, in), U (H, H), b (H,) of one layer of a torch.nn.RNN."""
    w = getattr(rnn, f"weight_ih_l{layer}")
    u = getattr(rnn, f"weight_hh_l{layer}")
    b = getattr(rnn, f"bias_ih_l{layer}", None)
    b2 = getattr(rnn, f"bias_hh_l{layer}", None)
    bias = (b if b is not None else 0) + (b2 if b2 is not None else 0)
    if not hasattr(bias, "shape"):
        import torch

        bias = torch.zeros(w.shape[0], dtype=w.dtype, device=w.device)
    return w, u, bias


def steps_of(loaded, text: str) -> RecurrenceSteps:
    """Hidden states of a loaded vanilla RNN on `text`, and every step recomputed by hand."""
    import torch

    model = loaded.model
    if getattr(model.config, "arch", None) != "rnn":
        raise UserError(f"{loaded.spec.id!r} is not a vanilla tanh RNN; pick tiny-rnn.")
    ids, truncated, message = _encode(loaded, text)
    x = torch.tensor([ids], device=loaded.device)  # (1, T)
    rnn = model.rnn
    with torch.inference_mode():
        out = model(x, return_hidden_states=True)
        states = out.hidden_states[0].float()  # (T, H)
        inputs = model.embed(x)[0].float()  # (T, E)
        for layer in range(rnn.num_layers):  # the whole recurrence by hand, layer by layer
            w, u, b = (p.float() for p in _rnn_weights(rnn, layer))
            h = torch.zeros(w.shape[0], device=inputs.device)  # (H,)
            hs = []
            for t in range(inputs.shape[0]):
                h = torch.tanh(w @ inputs[t] + u @ h + b)  # (H,)
                hs.append(h)
            layer_in, inputs = inputs, torch.stack(hs)  # (T, H)
        run_error = float((inputs - states).abs().max())
        h_prev = torch.cat([torch.zeros_like(states[:1]), states[:-1]])  # (T, H): h_{t−1}
        wx = torch.stack([w @ x_t for x_t in layer_in])  # (T, H), each as the step computes it
        uh = torch.stack([u @ h_t for h_t in h_prev])  # (T, H)
        pre = wx + uh + b  # (T, H)
        h_manual = torch.tanh(pre)  # (T, H)
    np_ = lambda a: a.detach().cpu().numpy().astype(np.float32)  # noqa: E731
    return RecurrenceSteps(
        model_id=loaded.spec.id, tokens=_tokens(loaded, ids), hidden=np_(states),
        inputs=np_(layer_in), wx=np_(wx), uh=np_(uh), b=np_(b), pre=np_(pre),
        h_manual=np_(h_manual), run_error=run_error, w_shape=tuple(w.shape),
        u_shape=tuple(u.shape), truncated=truncated, message=message)


def recurrence_of(loaded, text: str, step: int | None = None) -> RecurrenceResult:
    """Hidden states of a loaded vanilla RNN on `text`, and step `step` recomputed by hand."""
    return steps_of(loaded, text).at(step)


def recurrence_steps(model_id: str, text: str) -> RecurrenceSteps:
    """Every step of the RNN `model_id` on `text`; `.at(step)` is one step recomputed by hand."""
    from lmdemo.core.models import load

    return steps_of(load(model_id, kinds=KINDS), text)


def recurrence(model_id: str, text: str, step: int | None = None) -> RecurrenceResult:
    return recurrence_steps(model_id, text).at(step)


def _state_h(hidden):
    """The h part of a recurrent state: (L, B, H)."""
    return hidden[0] if isinstance(hidden, tuple) else hidden


def grad_norms_of(loaded, ids: list[int]) -> tuple[np.ndarray, float]:
    """(T−1,) ‖∂loss/∂h_t‖ where loss = −log p(ids[-1] | ids[:-1]) and h_t is the hidden state
    (all layers; h, not the LSTM's cell c) after reading ids[t]; and the loss in nats."""
    import torch

    model = loaded.model
    x = torch.tensor([ids], device=loaded.device)  # (1, T)
    with torch.enable_grad():
        emb = model.embed(x).detach()  # (1, T, E): inputs are constants, only states matter
        hidden, hs = None, []
        for t in range(len(ids) - 1):  # step by step, so every h_t is a node of the graph
            _, hidden = model.rnn(emb[:, t:t + 1], hidden)
            hs.append(_state_h(hidden))  # (L, 1, H)
        top = hs[-1][-1]  # (1, H): the top layer after the second-to-last token
        logits = model.head(model.proj(top))  # (1, V)
        loss = torch.nn.functional.cross_entropy(logits.float(), x[:, -1])
        grads = torch.autograd.grad(loss, hs, allow_unused=True)
    norms = [float(g.float().norm()) if g is not None else 0.0 for g in grads]
    return np.array(norms, dtype=np.float64), float(loss.detach())


def gradient_norms(model_ids: list[str], text: str) -> GradientResult:
    """‖∂loss_T/∂h_t‖ on `text` for each recurrent model (e.g. tiny-rnn, tiny-lstm, tiny-gru)."""
    from lmdemo.core.models import load

    if not model_ids:
        raise UserError("Pick at least one recurrent model.")
    models = [load(m, kinds=KINDS) for m in model_ids]
    ids, truncated, message = _encode(models[0], text)
    rows, losses = [], []
    for loaded in models:
        norms, loss = grad_norms_of(loaded, ids)
        rows.append(norms)
        losses.append(loss)
    T = len(ids)
    return GradientResult(model_ids=list(model_ids),
                          archs=[m.model.config.arch for m in models],
                          tokens=_tokens(models[0], ids), norms=np.stack(rows),
                          distance=np.arange(T - 2, -1, -1), loss=losses,
                          truncated=truncated, message=message)


def _interleaved_best(fns: list, repeats: int, budget_s: float,
                      sync=lambda: None) -> list[float]:
    """The fastest time in seconds of each function, run in turn (after one warm-up each), so
    that a busy machine slows them all alike; stops early once `budget_s` is spent (3 rounds at
    least). The fastest run is the one least disturbed by other work on a shared server (what
    `timeit` recommends). `sync` waits for the device to finish (a GPU runs asynchronously)."""
    for fn in fns:
        fn()
    sync()
    times: list[list[float]] = [[] for _ in fns]
    spent = 0.0
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t0 = time.perf_counter()
            fn()
            sync()
            dt = time.perf_counter() - t0
            times[i].append(dt)
            spent += dt
        if spent > budget_s and len(times[0]) >= 3:
            break
    return [min(t) for t in times]


def device_name(device: str) -> str:
    """The device in words: the GPU's name, or "CPU"."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return "Apple GPU (MPS)" if str(device).startswith("mps") else "CPU"


def timing_of(loaded, text: str, lengths: tuple[int, ...] = TIMING_LENGTHS, repeats: int = 15,
              budget_s: float = 1.0) -> TimingResult:
    """Time the same inputs (the text's embeddings, tiled to each length) through T sequential
    steps of the RNN's own W, U, b and through one causal attention of the same width, in float32
    on the device the model runs on."""
    import torch

    model, dev = loaded.model, torch.device(loaded.device)
    sync = {"cuda": torch.cuda.synchronize,
            "mps": getattr(getattr(torch, "mps", None), "synchronize", None)}.get(dev.type)
    ids, _, _ = _encode(loaded, text)
    w, u, b = (p.detach().float().to(dev) for p in _rnn_weights(model.rnn, 0))
    H = w.shape[0]
    wq, wk, wv = (torch.randn(H, w.shape[1], generator=torch.Generator().manual_seed(s)).to(dev)
                  * 0.05 for s in (1, 2, 3))
    with torch.inference_mode():
        base = model.embed(torch.tensor([ids], device=dev))[0].float()  # (n, E)
    sizes = [len(ids)] + [n for n in lengths if n != len(ids)]
    loop_s, kernel_s, attn_s = [], [], []
    cell = torch.nn.RNN(w.shape[1], H, batch_first=True).to(dev)
    with torch.no_grad():
        cell.weight_ih_l0.copy_(w)
        cell.weight_hh_l0.copy_(u)
        cell.bias_ih_l0.copy_(b)
        cell.bias_hh_l0.zero_()
    for n in sizes:
        x = base.repeat((n + len(ids) - 1) // len(ids), 1)[:n]  # (n, E)

        def loop(x=x):
            wx = x @ w.T + b  # (n, H): the input part has no dependency, done at once
            h = torch.zeros(H, device=dev)
            for t in range(x.shape[0]):  # the dependent part: n steps, each waits for the last
                h = torch.tanh(wx[t] + u @ h)  # (H,)
            return h

        def kernel(x=x):
            return cell(x[None])[0]  # (1, n, H)

        def attention(x=x):
            q, k, v = x @ wq.T, x @ wk.T, x @ wv.T  # (n, H) each
            scores = q @ k.T / H ** 0.5  # (n, n): every pair at once
            mask = torch.ones(len(x), len(x), dtype=torch.bool, device=dev).triu(1)
            return torch.softmax(scores.masked_fill(mask, float("-inf")), -1) @ v  # (n, H)

        with torch.inference_mode():
            a, k, c = _interleaved_best([loop, kernel, attention], repeats, budget_s,
                                         sync or (lambda: None))
        loop_s.append(a)
        kernel_s.append(k)
        attn_s.append(c)
    return TimingResult(model_id=loaded.spec.id, lengths=sizes, loop_s=loop_s, kernel_s=kernel_s,
                        attention_s=attn_s, hidden_size=int(H), repeats=repeats,
                        input_size=int(w.shape[1]), device=dev.type,
                        device_name=device_name(str(dev)), threads=torch.get_num_threads())


def timing(model_id: str, text: str, lengths: tuple[int, ...] = TIMING_LENGTHS) -> TimingResult:
    from lmdemo.core.models import load

    loaded = load(model_id, kinds=KINDS)
    if getattr(loaded.model.config, "arch", None) != "rnn":
        raise UserError(f"{model_id!r} is not a vanilla tanh RNN; pick tiny-rnn.")
    return timing_of(loaded, text, lengths)


@dataclass(frozen=True)
class PathResult:
    """Operations between two tokens: T − t for an RNN, one for attention."""

    n_tokens: int  # tokens read (with the start token), at most MAX_TOKENS

    @property
    def distances(self) -> list[int]:
        return list(range(1, max(2, self.n_tokens)))

    def rows(self) -> list[dict]:
        return [{"distance": d, "rnn_steps": d, "attention_steps": 1} for d in self.distances]


def path_length(text: str) -> PathResult:
    """How many tokens the lab reads of `text` (the first recurrent model's tokenizer)."""
    from lmdemo.core.models import load
    from lmdemo.core.registry import specs_of_kind

    specs = specs_of_kind(*KINDS)
    if not specs:
        raise UserError("No recurrent model is installed.")
    tokenizer = load(specs[0].id, kinds=KINDS).tokenizer
    return PathResult(min(len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1,
                          MAX_TOKENS))


def installed(model_id: str = RNN_MODEL) -> bool:
    """Whether the weights of `model_id` are on this machine."""
    from lmdemo.core.registry import get_spec, is_available

    return is_available(get_spec(model_id))


def recurrent_models() -> tuple[list[str], list[str]]:
    """The recurrent models that can be used, and those compared by default."""
    from lmdemo.core.registry import specs_of_kind

    options = [s.id for s in specs_of_kind(*KINDS)]
    return options, [m for m in GRADIENT_MODELS if m in options] or options[:1]

