"""JSON adapters over the services: what the Gradio app's named HTTP endpoints return.

Each function takes plain arguments (strings, numbers, lists — what an HTTP caller sends), calls one
lmdemo service, and returns plain dicts and lists of numbers and strings, never arrays, tensors or
figures, so the same result can go through `gradio_client`, `json.dumps` or a notebook. Arguments
arrive unchecked from the network: numbers are coerced here with `lmdemo.core.validate` (a bad one
is a `UserError` that says what is allowed) and the services validate the rest. No model is loaded until a function is called.
"""

from __future__ import annotations

from lmdemo.core import validate
from lmdemo.core.config import settings
from lmdemo.core.registry import default_lm

DEFAULT_ENCODER = "minilm"
DEFAULT_CLASSIFIER = "sentiment-minilm"
MAX_TOP = 50  # the most next tokens one call lists
MAX_SENTENCES = 64  # the most sentences one score / classify call accepts


# ----------------------------------------------------------------------------- argument checks

def texts_of(value, what: str = "sentence", limit: int = MAX_SENTENCES) -> list[str]:
    """A list of texts from a list, or from one string with one text per line."""
    return validate.texts(value, what, limit, settings().max_text_chars)


def _model(value, default: str) -> str:
    return (value or "").strip() if isinstance(value, str) and value.strip() else default


# ----------------------------------------------------------------------------- next word

def next_token(text: str, model: str = "", show: int = 10, temperature: float = 1.0,
               top_k: int = 0, top_p: float = 1.0) -> dict:
    """The `show` most likely next tokens after `text` (empty: after the start token), each with
    its raw probability and its probability after temperature / top-k / top-p; entropies in nats."""
    from lmdemo.lab import next_token as svc

    return svc.next_token(_model(model, default_lm()), text, top_k=top_k, temperature=temperature,
                          top_p=top_p, show=validate.whole(show, "show", 1, MAX_TOP)).to_json()


def score(sentences: list[str] | str, model: str = "") -> dict:
    """Sentences (a list, or text with one per line) ranked by their total log-probability
    (nats), each with its per-token log-probabilities and perplexity; most likely first."""
    from lmdemo.lab import next_token as svc

    model = _model(model, default_lm())
    results = [svc.score(model, text).to_json() for text in texts_of(sentences)]
    results.sort(key=lambda r: -r["total_log_prob"])
    return {"model": results[0]["model"], "sentences": results}


# ----------------------------------------------------------------------------- attention

def attention(text: str, model: str = DEFAULT_ENCODER, layer: int | None = None,
              head: int | None = None) -> dict:
    """Attention weights [layer][head][query][key] of one forward pass (narrowed if asked)."""
    from lmdemo.lab import attention as svc

    result = svc.attention(_model(model, DEFAULT_ENCODER), text)
    layer = None if layer in (None, "", -1) else validate.whole(layer, "layer", 0,
                                                                result.n_layers - 1)
    head = None if head in (None, "", -1) else validate.whole(head, "head", 0, result.n_heads - 1)
    data = result.to_json(layer=layer, head=head, digits=5)
    return dict(data, n_layers=result.n_layers, n_heads=result.n_heads)


# ----------------------------------------------------------------------------- positional

def positional(kind: str = "sinusoidal", length: int = 64, d_model: int = 64) -> dict:
    """A sinusoidal or sine-only encoding table (positions × dimensions)."""
    from lmdemo.lab import positional as pos

    kind = validate.choice(kind, "kind", pos.ENCODINGS)
    length = validate.whole(length, "length", 1, pos.LIMITS.max_length)
    d_model = validate.whole(d_model, "d_model", 2, pos.LIMITS.max_d_model)
    pe = pos.encoding(kind, length, d_model)  # (length, d_model)
    return {"kind": kind, "length": length, "d_model": d_model,
            "encoding": [[round(float(x), 6) for x in row] for row in pe]}


# ----------------------------------------------------------------------------- sentiment

def classify(texts: list[str] | str, model: str = DEFAULT_CLASSIFIER) -> list[dict]:
    """Label and both probabilities of each review, in input order."""
    from lmdemo.training import sentiment

    items = texts_of(texts, "review")
    return [p.to_json() for p in sentiment.classify(items, _model(model, DEFAULT_CLASSIFIER))]


def finetune_launch(name: str, base: str = "minilm", method: str = "lora", epochs: float = 1,
                    learning_rate: float | None = None, batch_size: int = 16,
                    max_length: int = 128, limit: int | None = None, token: str = "") -> dict:
    """Queue a fine-tuning run on the shipped reviews (it starts when a job slot is free)."""
    from lmdemo.training import jobs

    lr = learning_rate if learning_rate not in (None, "", 0) else (
        5e-4 if method == "lora" else 5e-5)
    # jobs.submit checks every hyperparameter (lmdemo.training.finetune.TrainConfig)
    config = {"base": _model(base, "minilm"), "method": method, "epochs": epochs,
              "learning_rate": lr, "batch_size": batch_size, "max_length": max_length,
              "data": "shipped"}
    if limit not in (None, "", 0):
        config["limit"] = validate.whole(limit, "limit", 1, 1_000_000)
    return jobs.submit((name or "").strip(), config, token=token or None).to_json()


def finetune_status(name: str = "") -> dict:
    """One run's status, config and metrics — or, with no name, every run, newest first."""
    from lmdemo.training import jobs

    name = (name or "").strip()
    if not name:
        return {"runs": [r.to_json() for r in jobs.list_runs()]}
    jobs.schedule()
    return dict(jobs.get_run(name).to_json(), metrics=jobs.metrics(name),
                log_tail=jobs.log_tail(name, 2000))
