"""JSON adapters over the services: what the Gradio app's named HTTP endpoints return.

Each function takes plain arguments (strings, numbers, lists — what an HTTP caller sends), calls one
lmdemo service, and returns plain dicts and lists of numbers and strings, never arrays, tensors or
figures, so the same result can go through `gradio_client`, `json.dumps` or a notebook. Arguments
arrive unchecked from the network: numbers are coerced here with `lmdemo.core.validate` (a bad one
is a `UserError` that says what is allowed) and the services validate the rest. No model is loaded
until a function is called.

Responses are bounded: /attention and /positional estimate their JSON size from the array shapes
before serialising and refuse (a `UserError` saying to ask for one layer or head, or smaller
sizes) beyond MAX_RESPONSE_BYTES; the other endpoints are bounded by their services' token caps.
Run details (config, log, error text, pid, paths) go only to callers with the training token when
the server has one (`finetune_status`); on a server without a token every caller sees config, log
and error, but never process ids, and the log and error pass through `public_message`, which
strips absolute server paths from the messages a visitor sees.
"""

from __future__ import annotations

import hmac
import re

from lmdemo.core import validate
from lmdemo.core.config import settings
from lmdemo.core.errors import UserError
from lmdemo.core.registry import default_lm
from lmdemo.lab.next_token import LIMITS as NEXT_TOKEN_LIMITS

DEFAULT_ENCODER = "minilm"
DEFAULT_CLASSIFIER = "sentiment-minilm"
MAX_TOP = NEXT_TOKEN_LIMITS.max_show  # the most next tokens one call lists: the engine's limit
MAX_SENTENCES = 64  # the most sentences one score / classify call accepts
MAX_INSIDE_CHARS = 2_000  # longest prompt the "Inside the model" endpoints read (each service
#                           also caps its tokens: 128 for the lens and heads, 64 for patching)
MAX_SEED = 2**32 - 1  # seeds of the induction sequence: 0 to this
MAX_TOKEN_CHARS = 100  # longest text of a single token (a pinned token, a target, an answer)
MAX_MODEL_CHARS = 200  # longest model id or run name
ATTENTION_DIGITS = 5  # decimals of an attention weight in /attention
POSITIONAL_DIGITS = 6  # decimals of an encoding value in /positional
MAX_RESPONSE_BYTES = 2_000_000  # the largest JSON one /attention or /positional call returns
MAX_SCORE_CHARS = 150_000  # characters one /score call reads in all: its JSON echoes each text,
#                            its tokens and a log-probability per token (~13 bytes a character)
PUBLIC_STATUS = ("progress", "epoch", "step", "total_steps", "eta_s", "best_val_accuracy",
                 "val_accuracy", "created", "started", "finished", "updated", "queue_position")
_ABS_PATH = re.compile(r"(?<![\w.:/~\\])/(?:[^\s'\"/:,;()<>]+/)+([^\s'\"/:,;()<>]*)")


def public_message(message: str) -> str:
    """A message fit for a visitor: every absolute server path becomes '…/<its last part>' (a run
    folder reads as its run name), so no folder layout of the server is disclosed."""
    return _ABS_PATH.sub(lambda m: f"…/{m.group(1)}" if m.group(1) else "…", str(message))


def _json_bytes(cells: int, digits: int) -> int:
    """About how many bytes `cells` numbers rounded to `digits` decimals take as JSON
    ("0.12345, ": the digits, "0.", a separator and a space; sign and brackets averaged in)."""
    return cells * (digits + 5)


def check_size(cells: int, digits: int, advice: str) -> None:
    """Refuse a response whose JSON would pass MAX_RESPONSE_BYTES, before it is built."""
    size = _json_bytes(cells, digits)
    if size > MAX_RESPONSE_BYTES:
        raise UserError(f"That response would be about {size / 1e6:.1f} MB of JSON ({cells:,} "
                        f"numbers); one call returns at most {MAX_RESPONSE_BYTES / 1e6:g} MB: "
                        f"{advice}")


# ----------------------------------------------------------------------------- argument checks

def texts_of(value, what: str = "sentence", limit: int = MAX_SENTENCES) -> list[str]:
    """A list of texts from a list, or from one string with one text per line."""
    return validate.texts(value, what, limit, settings().max_text_chars)


def _model(value, default: str) -> str:
    """A model id as given (stripped), or `default` when none is given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    return validate.text(value, "model id", MAX_MODEL_CHARS).strip()


def text_of(value, name: str = "text", allow_empty: bool = False) -> str:
    """A text within the server's length limit (LMDEMO_MAX_TEXT_CHARS), valid Unicode."""
    if value is None and allow_empty:
        return ""
    return validate.text(value, name, settings().max_text_chars, allow_empty=allow_empty)


def _prompt(value, name: str = "text") -> str:
    """A non-blank prompt of at most MAX_INSIDE_CHARS characters."""
    return validate.text(value, name, MAX_INSIDE_CHARS)


def _one_token(value, name: str) -> str | None:
    """An optional single-token text: None when empty; kept as typed (its leading space
    matters: " Paris" and "Paris" are different tokens)."""
    if value is None or value == "":
        return None
    return validate.text(value, name, MAX_TOKEN_CHARS, allow_empty=True)


# ----------------------------------------------------------------------------- next word

def next_token(text: str, model: str = "", show: int = 10, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0) -> dict:
    """The `show` most likely next tokens after `text` (empty: after the start token), each with
    its raw probability and its probability after temperature / top-k / top-p; entropies in nats."""
    from lmdemo.lab import next_token as svc

    text = text_of(text, allow_empty=True)
    return svc.next_token(_model(model, default_lm()), text, top_k=top_k, temperature=temperature,
                          top_p=top_p, show=validate.whole(show, "show", 1, MAX_TOP)).to_json()


def score(sentences: list[str] | str, model: str = "") -> dict:
    """Sentences (a list, or text with one per line) ranked by their total log-probability
    (nats), each with its per-token log-probabilities and perplexity; most likely first."""
    from lmdemo.lab import next_token as svc

    model = _model(model, default_lm())
    items = texts_of(sentences)
    total = sum(len(t) for t in items)
    if total > MAX_SCORE_CHARS:
        raise UserError(f"The sentences hold {total:,} characters together; one call scores at "
                        f"most {MAX_SCORE_CHARS:,}: send fewer or shorter sentences.")
    results = [svc.score(model, text).to_json() for text in items]
    results.sort(key=lambda r: -r["total_log_prob"])
    return {"model": results[0]["model"], "sentences": results}


# ----------------------------------------------------------------------------- attention

def attention_result(text: str, model: str = DEFAULT_ENCODER):
    """One forward pass's attention (`lmdemo.lab.attention.AttentionResult`), text and model
    checked first."""
    from lmdemo.lab import attention as svc

    return svc.attention(_model(model, DEFAULT_ENCODER), text_of(text))


def attention(text: str, model: str = DEFAULT_ENCODER, layer: int | None = None,
              head: int | None = None) -> dict:
    """Attention weights [layer][head][query][key] of one forward pass (narrowed if asked); a
    response over MAX_RESPONSE_BYTES is refused with a message to ask for one layer or head."""
    if layer not in (None, "", -1):
        validate.whole(layer, "layer", 0)
    if head not in (None, "", -1):
        validate.whole(head, "head", 0)
    result = attention_result(text, model)
    layer = None if layer in (None, "", -1) else validate.whole(layer, "layer", 0,
                                                                result.n_layers - 1)
    head = None if head in (None, "", -1) else validate.whole(head, "head", 0, result.n_heads - 1)
    n_tokens = len(result.tokens)
    cells = ((1 if layer is not None else result.n_layers)
             * (1 if head is not None else result.n_heads) * n_tokens * n_tokens)
    check_size(cells, ATTENTION_DIGITS, f"{result.n_layers} layers × {result.n_heads} heads × "
               f"{n_tokens}² tokens. Ask for one layer (layer=L), one head (head=H) or both, or "
               "send a shorter text.")
    data = result.to_json(layer=layer, head=head, digits=ATTENTION_DIGITS)
    return dict(data, n_layers=result.n_layers, n_heads=result.n_heads)


# ----------------------------------------------------------------------------- positional

def positional(kind: str = "sinusoidal", length: int = 64, d_model: int = 64) -> dict:
    """A sinusoidal or sine-only encoding table (positions × dimensions)."""
    from lmdemo.lab import positional as pos

    kind = validate.choice(kind, "kind", pos.ENCODINGS)
    length = validate.whole(length, "length", 1, pos.LIMITS.max_length)
    d_model = validate.whole(d_model, "d_model", 2, pos.LIMITS.max_d_model)
    check_size(length * d_model, POSITIONAL_DIGITS, f"{length} positions × {d_model} "
               "dimensions. Ask for fewer positions or a smaller d_model.")
    pe = pos.encoding(kind, length, d_model)  # (length, d_model)
    return {"kind": kind, "length": length, "d_model": d_model,
            "encoding": [[round(float(x), POSITIONAL_DIGITS) for x in row] for row in pe]}


# ----------------------------------------------------------------------------- sentiment

def classify(texts: list[str] | str, model: str = DEFAULT_CLASSIFIER) -> list[dict]:
    """Label and both probabilities of each review, in input order."""
    from lmdemo.training import sentiment

    items = texts_of(texts, "review")
    return [p.to_json() for p in sentiment.classify(items, _model(model, DEFAULT_CLASSIFIER))]


def _launch_config(base, method, epochs, learning_rate, batch_size, max_length, limit) -> dict:
    """A run's config on the shipped reviews (learning rate 0 or empty: the method's default);
    the hyperparameters are checked by lmdemo.training.finetune.TrainConfig where it is used."""
    lr = learning_rate if learning_rate not in (None, "", 0) else (
        5e-4 if method == "lora" else 5e-5)
    config = {"base": _model(base, "minilm"), "method": method, "epochs": epochs,
              "learning_rate": lr, "batch_size": batch_size, "max_length": max_length,
              "data": "shipped"}
    if limit not in (None, "", 0):
        config["limit"] = validate.whole(limit, "limit", 1, 1_000_000)
    return config


def finetune_launch(name: str, base: str = "minilm", method: str = "lora", epochs: float = 1,
                    learning_rate: float | None = None, batch_size: int = 16,
                    max_length: int = 128, limit: int | None = None, token: str = "") -> dict:
    """Queue a fine-tuning run on the shipped reviews (it starts when a job slot is free)."""
    from lmdemo.training import jobs

    config = _launch_config(base, method, epochs, learning_rate, batch_size, max_length, limit)
    name = validate.text(name, "run name", MAX_MODEL_CHARS)
    return _run_view(jobs.submit(name.strip(), config, token=token or None).to_json(), token)


def finetune_estimate(base: str = "minilm", method: str = "lora", epochs: float = 1,
                      learning_rate: float | None = None, batch_size: int = 16,
                      max_length: int = 128, limit: int | None = None) -> dict:
    """How long `finetune_launch` with these settings would take on this server, before it
    starts: seconds (None when no rate is known yet), the tokens and steps it is worked out from
    and where its rates come from (a run measured here, or typical ones)."""
    from lmdemo.training import sentiment

    config = _launch_config(base, method, epochs, learning_rate, batch_size, max_length, limit)
    return sentiment.estimate_run(config, "shipped").to_json()


def is_operator(token: str | None = "") -> bool:
    """Whether the caller gave this server's training token (LMDEMO_TRAIN_TOKEN; False when the
    server has none): the one caller who sees pids and server paths."""
    expected = settings().train_token
    return bool(expected) and hmac.compare_digest(str(token or ""), expected)


def may_see_run_details(token: str | None = "") -> bool:
    """Whether a caller sees run configs, logs, errors, pids and paths: always when the server
    has no training token (LMDEMO_TRAIN_TOKEN), else only with that token."""
    expected = settings().train_token
    return not expected or hmac.compare_digest(str(token or ""), expected)


def _public_run(run: dict) -> dict:
    """What any visitor sees of a run: its name, state and progress numbers."""
    status = run.get("status") or {}
    return {"name": run["name"], "state": run["state"],
            "status": {k: status[k] for k in PUBLIC_STATUS if k in status}}


def _run_view(run: dict, token: str | None, log_tail: str | None = None) -> dict:
    """A run (RunInfo.to_json, with its log tail when given) as this caller may see it: all of it
    with the server's training token; with no token on the server, all but process ids and with
    server paths cut from its error and log; else `_public_run`."""
    from lmdemo.training.jobs import without_private

    extra = {} if log_tail is None else {"log_tail": log_tail}
    if is_operator(token):
        return dict(run, **extra)
    if not may_see_run_details(token):
        return _public_run(run)
    status = without_private(run.get("status") or {})
    if "error" in status:
        status["error"] = public_message(status["error"])
    config = {k: public_message(v) if isinstance(v, str) else v
              for k, v in (run.get("config") or {}).items()}  # a CLI run's data file path
    shown = dict(run, status=status, config=config, **extra)
    if "log_tail" in shown:
        shown["log_tail"] = public_message(shown["log_tail"])
    return shown


def finetune_status(name: str = "", token: str = "") -> dict:
    """One run's status, config and metrics — or, with no name, every run, newest first. When
    the server has a training token, config, log tail, error text, pid and paths are shown only
    with that token; without it, name, state, progress and the metrics (training curves). On a
    server without a token, everything but process ids, with server paths cut from the config,
    the log and the error."""
    from lmdemo.training import jobs

    name = "" if name is None else validate.text(name, "run name", MAX_MODEL_CHARS,
                                                  allow_empty=True).strip()
    if not name:
        return {"runs": [_run_view(r.to_json(), token) for r in jobs.list_runs()]}
    jobs.schedule()
    run = jobs.get_run(name).to_json()
    log = jobs.log_tail(name, 2000) if may_see_run_details(token) else None
    return dict(_run_view(run, token, log), metrics=jobs.metrics(name))


def finetune_cancel(name: str, token: str = "") -> dict:
    """Stop a queued or running run (with the training token when the server sets one); the run
    as any visitor may see it afterwards."""
    from lmdemo.training import jobs

    name = validate.text(name, "run name", MAX_MODEL_CHARS, allow_empty=True).strip()
    if not name:
        raise UserError("Give the name of the run to cancel.")
    return _public_run(jobs.cancel(name, token=token or None).to_json())


# ----------------------------------------------------------------------------- inside the model
# Each `*_result` checks the arguments and returns the service's dataclass (the Gradio tab draws
# it); the endpoint of the same name returns its to_json(). Every response is bounded by the
# services' token caps: tables are depths × positions or layers × heads, never vocabulary-sized.

def lens_result(text: str, model: str = "", pin: str | None = ""):
    """The logit lens of `text` (`lmdemo.lab.lens.LensResult`)."""
    from lmdemo.lab import lens as svc

    return svc.lens(_model(model, default_lm()), _prompt(text), _one_token(pin, "pinned token"))


def lens(text: str, model: str = "", pin: str = "") -> dict:
    """The logit lens: the most likely next token at every depth (embedding, layer 1..L) and
    position, `top[depth][position]` = {token, id, prob}; with `pin` (one token, e.g. " Paris")
    also its probability and rank at every depth (`pin`)."""
    return lens_result(text, model, pin).to_json()


def heads_result(text: str, model: str = "", target: str = "", heads: str | list = "",
                 mode: str = "zero", show: int = 10):
    """(ImportanceMap, HeadAblation or None): every head's importance for `target`, and the
    ablation of `heads` together when some are given."""
    from lmdemo.lab import head_ablation as svc

    model = _model(model, default_lm())
    text = _prompt(text)
    target = _one_token(target, "target token")
    if target is None:
        raise UserError("Give a target token (e.g. \" Paris\", with its space): the map shows "
                        "how much its log-probability drops when each head is switched off.")
    mode = svc.check_mode(mode)
    show = validate.whole(show, "show", 1, svc.LIMITS.max_show)
    if isinstance(heads, str):
        heads = validate.text(heads, "list of heads", MAX_INSIDE_CHARS, allow_empty=True)
        heads = svc.parse_heads(heads)
    elif heads is not None and not isinstance(heads, (list, tuple)):
        raise UserError("Give the heads as text like '1.3, 0.0' (layer.head) or as a list of "
                        "[layer, head] pairs.")
    imp = svc.importance(model, text, target, mode)
    ablation = svc.head_ablation(model, text, heads, mode, show, target) if heads else None
    return imp, ablation


def heads(text: str, model: str = "", target: str = "", heads: str | list = "",
          mode: str = "zero", show: int = 10) -> dict:
    """Head importance: `importance[layer][head]` = the drop in log p(target) at the end of
    `text` when that head alone is ablated ("zero" or "mean"), `top_heads` the largest drops; with
    `heads` ("1.3, 0.0" or [[1, 3], [0, 0]]) also `ablation`: the top `show` next tokens before and
    after switching them off together, and KL (otherwise `ablation` is null)."""
    imp, ablation = heads_result(text, model, target, heads, mode, show)
    return dict(imp.to_json(), ablation=None if ablation is None else ablation.to_json())


def patch_result(clean: str = "", corrupt: str = "", model: str = "", clean_answer: str = "",
                 corrupt_answer: str = "", progress=None):
    """The activation-patching grid (`lmdemo.lab.patching.PatchResult`); both prompts empty:
    the first preset."""
    from lmdemo.lab import patching as svc

    blank = [v is None or (isinstance(v, str) and not v.strip()) for v in (clean, corrupt)]
    if all(blank):
        clean, corrupt = svc.PRESETS[0]
    elif any(blank):
        raise UserError("Give both a clean and a corrupted prompt (or neither, for the preset "
                        f"{svc.PRESETS[0][0]!r} / {svc.PRESETS[0][1]!r}).")
    return svc.patch(_model(model, default_lm()), _prompt(clean, "clean prompt"),
                     _prompt(corrupt, "corrupted prompt"),
                     _one_token(clean_answer, "clean answer"),
                     _one_token(corrupt_answer, "corrupted answer"), progress)


def patch(clean: str = "", corrupt: str = "", model: str = "", clean_answer: str = "",
          corrupt_answer: str = "") -> dict:
    """Activation patching: `recovered[depth][position]` = the share of the clean answer's logit
    lead over the corrupted answer that copying the clean run's residual stream at that cell into
    the corrupted run brings back (1 = all, 0 = none). The prompts must be the same number of
    tokens; the answers default to each run's top next token."""
    return patch_result(clean, corrupt, model, clean_answer, corrupt_answer).to_json()


def induction_result(model: str = "", length: int = 50, seed: int = 0):
    """The repeated-random-sequence experiment (`lmdemo.lab.induction.InductionResult`)."""
    from lmdemo.lab import induction as svc

    length = validate.whole(length, "length", svc.LIMITS.min_length, svc.LIMITS.max_length)
    seed = validate.whole(seed, "seed", 0, MAX_SEED)
    return svc.induction(_model(model, default_lm()), length, seed)


def induction(model: str = "", length: int = 50, seed: int = 0) -> dict:
    """A seeded random sequence of `length` tokens read twice: per-token `losses` (nats),
    `loss_first` / `loss_second` (the drop is in-context learning) and each head's induction
    score `scores[layer][head]`, `top_heads` the strongest."""
    return induction_result(model, length, seed).to_json()
