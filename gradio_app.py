"""The Gradio app: the Streamlit pages' services and figures as tabs, plus a JSON HTTP API.

`python gradio_app.py [--host H] [--port P]` serves a `gr.Blocks` with tabs for next word,
attention, positional encoding, inside the model (logit lens, head ablation, activation patching,
induction heads) and sentiment (query, fine-tuning launch and status). Every handler calls the
same lmdemo service and plot builder as the Streamlit page; nothing is reimplemented.
Named endpoints (`/next_token`, `/score`, `/attention`, `/classify`, `/positional`, `/lens`,
`/heads`, `/patch`, `/induction`, `/finetune_launch`, `/finetune_status`, `/finetune_cancel`) return plain JSON
through `lmdemo.api`, callable with
`gradio_client.Client(url).predict(..., api_name="/next_token")`. Model work runs on one queue
whose concurrency and length are capped (`LMDEMO_GRADIO_CONCURRENCY`, `LMDEMO_GRADIO_QUEUE`, read
with the other server settings by `lmdemo.core.config.gradio_settings`), so a crowd waits in line
instead of exhausting memory. A service's `UserError` becomes a `gr.Error`
with the same message. Building the Blocks loads no model: weights load on the first request.

Cross-origin calls are refused: `SameOriginOnly` answers 403 to any request whose `Origin` header
names another site than the `Host` it was sent to (browsers set both; a page cannot forge them),
unless the operator lists the origin in the settings' `allowed_origins`. Gradio's own CORS layer
answers only localhost origins for a local server and every origin for a public host name, so
without this a cross-site page could call the endpoints (and launch jobs) in a visitor's browser.
Gradio adds that layer in front of the app's own middleware, where it would answer a cross-site
preflight (OPTIONS) with allow headers itself; so when the server starts, `_guard_first` moves
`SameOriginOnly` in front of it, and a foreign preflight is refused (403, no
Access-Control-Allow-Origin) like the request it announces. Clients that send no Origin
(gradio_client, curl, scripts) are not affected. Known library notices stay out of the server's
log (`lmdemo.core.quiet`).
"""

import argparse
import contextlib
import logging
import math
import os
from urllib.parse import urlsplit

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # never phone home (offline first)

import gradio as gr  # noqa: E402
from starlette.datastructures import Headers  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from starlette.responses import PlainTextResponse  # noqa: E402

from gradio_views import (  # noqa: E402
    attention_view,
    classify_view,
    estimate_view,
    guarded,
    heads_view,
    induction_view,
    launch_view,
    lens_view,
    model_choices,
    next_word_view,
    patch_view,
    pick_choice,
    positional_view,
    score_view,
    status_view,
)
from lmdemo import api  # noqa: E402
from lmdemo.core import quiet  # noqa: E402
from lmdemo.core.config import GradioSettings, gradio_settings  # noqa: E402
from lmdemo.core.registry import (  # noqa: E402
    ATTENTION_KINDS,
    CAUSAL_KINDS,
    LM_KINDS,
    default_lm,
)

log = logging.getLogger("lmdemo.gradio")
LN2 = math.log(2)  # nats -> bits
MODELS = "models"  # the concurrency group every model-running event shares
NEXT_EXAMPLES = ["The capital of France is", "I drink a cup of", "The cat sat on the",
                 "Once upon a time there was a"]
ATTENTION_EXAMPLES = ["The animal didn't cross the street because it was too tired",
                      "The animal didn't cross the street because it was too wide"]
SCORE_EXAMPLE = "The cat sat on the mat.\nThe mat sat on the cat.\nCat the on sat mat the."
REVIEW_EXAMPLE = "A warm, funny film with a great cast.\nTwo hours I will never get back."
LENS_EXAMPLES = ["The capital of France is the city of", "The Eiffel Tower is in the city of",
                 "One, two, three, four,"]
HEADS_EXAMPLES = ["When Mary and John went to the store, John gave a drink to",
                  "The capital of France is the city of"]


# How the server runs (host, port, queue, threads), read from the environment by
# lmdemo.core.config.gradio_settings(); the old name stays for callers such as bench/load.py.
ServerSettings = GradioSettings


@contextlib.contextmanager
def _text_beside_model(examples: list[str], kinds: tuple[str, ...], default: str):
    """A text box with examples on the left and a model dropdown on the right; the body of the
    `with` adds its own controls under the dropdown."""
    choices = model_choices(*kinds)
    with gr.Row():
        with gr.Column(scale=2):
            text = gr.Textbox(examples[0], label="Text", lines=2)
            gr.Examples([[e] for e in examples], [text])
        with gr.Column(scale=1):
            model = gr.Dropdown(choices, value=pick_choice(choices, default), label="Model",
                                allow_custom_value=True)
            yield text, model


def _next_word_tab() -> None:
    with _text_beside_model(NEXT_EXAMPLES, LM_KINDS, default_lm()) as (text, model):
        show = gr.Slider(1, api.MAX_TOP, 10, step=1, label="Tokens shown")
        temperature = gr.Slider(0, 3, 1.0, step=0.05, label="Temperature (0 = greedy)")
        top_k = gr.Slider(0, 100, 0, step=1, label="top-k (0 = keep all)")
        top_p = gr.Slider(0.01, 1, 1.0, step=0.01, label="top-p (1 = keep all)")
    btn = gr.Button("Predict the next token", variant="primary")
    plot = gr.Plot(label="Next-token probabilities")
    summary = gr.Markdown()
    table = gr.Dataframe(headers=["token", "id", "p (raw)", "p (reshaped)"], label="Top tokens")
    inputs = [text, model, show, temperature, top_k, top_p]
    for trigger in (btn.click, text.submit):
        trigger(next_word_view, inputs, [plot, table, summary], api_visibility="private",
                concurrency_id=MODELS)
    with gr.Accordion("Score whole sentences", open=False):
        sentences = gr.Textbox(SCORE_EXAMPLE, label="Candidate sentences (one per line)",
                               lines=4)
        score_btn = gr.Button("Rank by probability")
        score_plot = gr.Plot()
        score_table = gr.Dataframe(headers=["sentence", "log p (nats)", "perplexity"])
        score_btn.click(score_view, [sentences, model], [score_plot, score_table],
                        api_visibility="private", concurrency_id=MODELS)


def _attention_tab() -> None:
    with _text_beside_model(ATTENTION_EXAMPLES, ATTENTION_KINDS,
                            api.DEFAULT_ENCODER) as (text, model):
        with gr.Row():
            layer = gr.Number(3, label="Layer", precision=0, minimum=0)
            head = gr.Number(1, label="Head", precision=0, minimum=0)
        view = gr.Radio([("One head", "head"), ("Mean over heads", "mean"),
                         ("Rollout", "rollout")], value="head", label="Show")
    btn = gr.Button("Show attention", variant="primary")
    info = gr.Markdown()
    heat = gr.Plot(label="Attention weights")
    grid = gr.Plot(label="Every layer × head")
    for trigger in (btn.click, text.submit):
        trigger(attention_view, [text, model, layer, head, view], [heat, grid, info],
                api_visibility="private", concurrency_id=MODELS)


def _positional_tab() -> None:
    from lmdemo.lab import positional as pos

    with gr.Row():
        kind = gr.Radio(list(pos.ENCODINGS), value="sinusoidal", label="Encoding")
        metric = gr.Radio(list(pos.METRICS), value="dot", label="Similarity")
        length = gr.Slider(2, pos.LIMITS.max_length, 100, step=1, label="Positions")
        d_model = gr.Slider(2, pos.LIMITS.max_d_model, 64, step=2, label="d_model (even)")
    btn = gr.Button("Draw", variant="primary")
    spread = gr.Markdown()
    with gr.Row():
        enc = gr.Plot(label="Encoding")
        sim = gr.Plot(label="Similarity")
    diag = gr.Plot(label="Similarity by distance")
    btn.click(positional_view, [kind, length, d_model, metric], [enc, sim, diag, spread],
             api_visibility="private", concurrency_id=MODELS)


def _inside_tab() -> None:
    from lmdemo.lab import head_ablation, induction
    from lmdemo.lab.patching import PRESETS

    with gr.Tab("Logit lens"):
        with _text_beside_model(LENS_EXAMPLES, LM_KINDS, default_lm()) as (text, model):
            pin = gr.Textbox(" Paris", label="Follow one token (with its space; empty: none)")
        btn = gr.Button("Read every layer", variant="primary")
        info = gr.Markdown()
        grid = gr.Plot(label="Top next token at every depth and position")
        curve = gr.Plot(label="The followed token through the depths")
        table = gr.Dataframe(label="Top token (probability)")
        with gr.Accordion("JSON", open=False):
            data = gr.JSON()
        for trigger in (btn.click, text.submit):
            trigger(lens_view, [text, model, pin], [grid, curve, table, info, data],
                    api_visibility="private", concurrency_id=MODELS)
    with gr.Tab("Head ablation"):
        with _text_beside_model(HEADS_EXAMPLES, CAUSAL_KINDS, default_lm()) as (text, model):
            target = gr.Textbox(" Mary", label="Target token (with its space)")
            heads = gr.Textbox("", label="Heads to ablate together (layer.head, e.g. 1.3, 0.0)")
            mode = gr.Radio(list(head_ablation.MODES), value="zero", label="Ablation")
            show = gr.Slider(1, head_ablation.LIMITS.max_show, 10, step=1, label="Tokens shown")
        btn = gr.Button("Switch heads off", variant="primary")
        info = gr.Markdown()
        fig = gr.Plot(label="Importance of each head")
        bars = gr.Plot(label="Next token with the heads ablated")
        table = gr.Dataframe(headers=["layer", "head", "drop (nats)"], label="Most important")
        with gr.Accordion("JSON", open=False):
            data = gr.JSON()
        btn.click(heads_view, [text, model, target, heads, mode, show],
                  [fig, bars, table, info, data], api_visibility="private",
                  concurrency_id=MODELS)
    with gr.Tab("Activation patching"):
        choices = model_choices(*CAUSAL_KINDS)
        with gr.Row():
            with gr.Column(scale=2):
                clean = gr.Textbox(PRESETS[0][0], label="Clean prompt")
                corrupt = gr.Textbox(PRESETS[0][1], label="Corrupted prompt (same length)")
                gr.Examples([list(p) for p in PRESETS], [clean, corrupt])
            with gr.Column(scale=1):
                model = gr.Dropdown(choices, value=pick_choice(choices, default_lm()), label="Model",
                                    allow_custom_value=True)
                clean_answer = gr.Textbox("", label="Clean answer (empty: its top token)")
                corrupt_answer = gr.Textbox("", label="Corrupted answer (empty: its top token)")
        btn = gr.Button("Patch every layer and position", variant="primary")
        info = gr.Markdown()
        grid = gr.Plot(label="Share of the clean answer's lead recovered")
        with gr.Accordion("JSON", open=False):
            data = gr.JSON()
        btn.click(patch_view, [clean, corrupt, model, clean_answer, corrupt_answer],
                  [grid, info, data], api_visibility="private", concurrency_id=MODELS)
    with gr.Tab("Induction heads"):
        choices = model_choices(*CAUSAL_KINDS)
        with gr.Row():
            model = gr.Dropdown(choices, value=pick_choice(choices, default_lm()), label="Model",
                                allow_custom_value=True)
            length = gr.Slider(induction.LIMITS.min_length, induction.LIMITS.max_length,
                               induction.LIMITS.default_length, step=1,
                               label="Random tokens (read twice)")
            seed = gr.Number(0, label="Seed", precision=0, minimum=0)
        btn = gr.Button("Read a random sequence twice", variant="primary")
        info = gr.Markdown()
        with gr.Row():
            curve = gr.Plot(label="Loss of each token")
            fig = gr.Plot(label="Induction score of each head")
        table = gr.Dataframe(headers=["layer", "head", "score"], label="Strongest induction heads")
        with gr.Accordion("JSON", open=False):
            data = gr.JSON()
        btn.click(induction_view, [model, length, seed], [curve, fig, table, info, data],
                  api_visibility="private", concurrency_id=MODELS)


def _sentiment_tab() -> None:
    cls_choices = model_choices("classifier")
    enc_choices = model_choices("encoder")
    with gr.Tab("Query"):
        if not cls_choices:
            gr.Markdown("No sentiment classifier is installed yet: `sentiment-minilm` appears "
                        "once lmdemo/assets/sentiment-minilm exists, and each finished "
                        "fine-tuning run as `run:<name>`.")
        reviews = gr.Textbox(REVIEW_EXAMPLE, label="Reviews (one per line)", lines=4)
        model = gr.Dropdown(cls_choices, value=pick_choice(cls_choices, api.DEFAULT_CLASSIFIER),
                            label="Classifier", allow_custom_value=True)
        btn = gr.Button("Classify", variant="primary")
        label = gr.Plot(label="First review")
        notes = gr.Markdown()
        table = gr.Dataframe(headers=["review", "label", "p(positive)", "tokens read"])
        btn.click(classify_view, [reviews, model], [label, table, notes],
                  api_visibility="private", concurrency_id=MODELS)
    with gr.Tab("Fine-tune"):
        gr.Markdown("Fine-tune an encoder on the shipped movie reviews. The run trains in its "
                    "own process and appears as classifier `run:<name>` when done.")
        with gr.Row():
            name = gr.Textbox(label="Run name", placeholder="my-run")
            base = gr.Dropdown(enc_choices, value=pick_choice(enc_choices, "minilm"), label="Base",
                               allow_custom_value=True)
            method = gr.Radio(["lora", "full"], value="lora", label="Method")
        with gr.Row():
            epochs = gr.Number(1, label="Epochs", minimum=0)
            lr = gr.Number(0, label="Learning rate (0 = default for the method)", minimum=0)
            batch = gr.Number(16, label="Batch size", precision=0, minimum=1)
            max_len = gr.Number(128, label="Max tokens", precision=0, minimum=2)
            limit = gr.Number(0, label="Train on at most N reviews (0 = all)", precision=0,
                              minimum=0)
        token = gr.Textbox(label="Training token (if the server asks for one)", type="password")
        with gr.Row():
            estimate = gr.Button("Estimate the duration")
            launch = gr.Button("Launch", variant="primary")
        estimated = gr.Markdown()
        launched = gr.JSON(label="Run")
        estimate.click(estimate_view, [base, method, epochs, lr, batch, max_len, limit],
                       estimated, api_visibility="private")
        launch.click(launch_view, [name, base, method, epochs, lr, batch, max_len, limit, token],
                     launched, api_visibility="private")
    with gr.Tab("Runs"):
        with gr.Row():
            run = gr.Textbox(label="Run name (empty: list every run)")
            run_token = gr.Textbox(label="Training token (shows configs and logs when the "
                                   "server has one)", type="password")
        refresh = gr.Button("Refresh")
        status = gr.JSON(label="Status")
        curve = gr.Plot(label="Training curves")
        refresh.click(status_view, [run, run_token], [status, curve], api_visibility="private")


def _endpoints(settings: GradioSettings) -> None:
    """The named JSON endpoints (API only: no widgets)."""
    limit = settings.concurrency
    for fn, name in ((api.next_token, "next_token"), (api.score, "score"),
                     (api.attention, "attention"), (api.classify, "classify"),
                     (api.positional, "positional"), (api.lens, "lens"), (api.heads, "heads"),
                     (api.patch, "patch"), (api.induction, "induction")):
        gr.api(guarded(fn), api_name=name, concurrency_id=MODELS, concurrency_limit=limit)
    gr.api(guarded(api.finetune_launch), api_name="finetune_launch", concurrency_limit=1)
    gr.api(guarded(api.finetune_status), api_name="finetune_status", concurrency_limit=4)
    gr.api(guarded(api.finetune_cancel), api_name="finetune_cancel", concurrency_limit=1)


def build(settings: GradioSettings | None = None) -> gr.Blocks:
    """The whole app, queue included. Loads no model."""
    settings = settings or gradio_settings()
    with gr.Blocks(title="lmdemo — how language models work", analytics_enabled=False) as demo:
        gr.Markdown("# lmdemo\nSee how language models work: the next word, attention, "
                    "positional encodings, what happens inside the model layer by layer, and a "
                    "sentiment classifier. The same models and "
                    "figures as the Streamlit app; every tab is also an HTTP endpoint (see "
                    "*Use via API* below).")
        with gr.Tab("Next word"):
            _next_word_tab()
        with gr.Tab("Attention"):
            _attention_tab()
        with gr.Tab("Positional encoding"):
            _positional_tab()
        with gr.Tab("Inside the model"):
            _inside_tab()
        with gr.Tab("Sentiment"):
            _sentiment_tab()
        _endpoints(settings)
    demo.queue(default_concurrency_limit=settings.concurrency, max_size=settings.queue_size)
    return demo


class SameOriginOnly:
    """ASGI middleware: a request (HTTP or websocket) whose Origin is another site than the Host
    it was sent to gets 403 and reaches no endpoint. `allowed` lists extra origins
    ("https://example.org"); "*" turns the check off."""

    def __init__(self, app, allowed: tuple[str, ...] = ()):
        self.app = app
        self.allowed = {o.strip().rstrip("/").lower() for o in allowed if o.strip()}

    def allows(self, headers: Headers) -> bool:
        origin = headers.get("origin")
        if origin is None or "*" in self.allowed:
            return True  # not sent by a browser page on another site
        origin = origin.strip().rstrip("/").lower()
        if origin in self.allowed:
            return True
        if origin == "null":  # sandboxed frames and files: never the app's own page
            return False
        return urlsplit(origin).netloc == headers.get("host", "").strip().lower()

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and not self.allows(Headers(scope=scope)):
            log.warning("refused a cross-origin %s request to %s", scope["type"],
                        scope.get("path"))
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
                return
            response = PlainTextResponse("Cross-origin requests are refused by this server.",
                                         status_code=403)
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


@contextlib.asynccontextmanager
async def _guard_first(app):
    """At startup, put SameOriginOnly in front of every other middleware (Gradio adds its CORS
    layer in front of the app's own, where it answers preflights before our guard sees them);
    the stack is rebuilt in that order for the first request. Starlette builds the stack from
    `user_middleware` when `middleware_stack` is None (its public attributes)."""
    middleware = getattr(app, "user_middleware", None)
    ours = [m for m in middleware or [] if m.cls is SameOriginOnly]
    if ours and middleware[0] is not ours[0]:
        middleware[:] = ours + [m for m in middleware if m.cls is not SameOriginOnly]
        app.middleware_stack = None  # rebuilt, guard outermost, on the next request
    elif not ours:
        log.warning("SameOriginOnly is not installed: cross-origin requests are not refused")
    yield


def app_kwargs(settings: GradioSettings) -> dict:
    """What `launch(app_kwargs=...)` passes to the FastAPI app: the same-origin guard, moved in
    front of Gradio's CORS layer when the server starts."""
    allowed = settings.allowed_origins
    return {"middleware": [Middleware(SameOriginOnly, allowed=allowed)],
            "lifespan": _guard_first}


def launch(demo: gr.Blocks, settings: GradioSettings, **kwargs):
    """Serve `demo` as configured (host, port, the same-origin guard); kwargs go to launch."""
    quiet.install()
    kwargs.setdefault("server_name", settings.host)
    kwargs.setdefault("server_port", settings.port)
    return demo.launch(ssr_mode=False, mcp_server=False, app_kwargs=app_kwargs(settings),
                       **kwargs)


def main(argv: list[str] | None = None) -> None:
    defaults = gradio_settings()
    parser = argparse.ArgumentParser(description="Serve the lmdemo Gradio app and its HTTP API.")
    parser.add_argument("--host", default=defaults.host,
                        help=f"interface to listen on (default {defaults.host}; 0.0.0.0 for all)")
    parser.add_argument("--port", type=int, default=defaults.port,
                        help=f"port (default {defaults.port}; env LMDEMO_GRADIO_PORT)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    import torch  # the server computes with it on every request anyway

    torch.set_num_threads(defaults.threads())  # this process only; training jobs keep theirs
    launch(build(defaults), defaults, server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
