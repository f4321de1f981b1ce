"""The Gradio app's views: each takes a tab's inputs, calls one `lmdemo.api` adapter (the same
services as the Streamlit pages) and one plot builder, and returns what the tab's outputs show —
figures, tables, a line of text. A service's `UserError` becomes a `gr.Error` with the same message;
any other failure is logged and shown as a short message; neither carries an absolute server path
(`lmdemo.api.public_message`). gradio_app.py lays the views out.
"""

import functools
import logging
import math

import gradio as gr

from lmdemo import api
from lmdemo.core import validate
from lmdemo.core.errors import UserError

log = logging.getLogger("lmdemo.gradio")
LN2 = math.log(2)  # nats -> bits


def guarded(fn):
    """Run a handler; a UserError becomes gr.Error with its message, anything else a short one."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except UserError as exc:
            raise gr.Error(api.public_message(exc), print_exception=False) from None
        except Exception as exc:  # a bug must not reach the user as a bare traceback
            log.exception("%s failed", fn.__name__)
            raise gr.Error(api.public_message(f"{fn.__name__} could not be computed: "
                                              f"{type(exc).__name__}: {str(exc)[:300]}"),
                           print_exception=False) from None
    return wrapper


def model_choices(*kinds: str) -> list[str]:
    """Ids of the installed models of these kinds (the registry only; nothing is loaded)."""
    from lmdemo.core.registry import specs_of_kind

    try:
        return [s.id for s in specs_of_kind(*kinds)]
    except Exception:  # a broken registry entry must not stop the app from starting
        log.exception("listing models failed")
        return []


def pick_choice(choices: list[str], preferred: str) -> str:
    return preferred if preferred in choices or not choices else choices[0]


# ----------------------------------------------------------------------------- handlers
# Each takes the widgets' values and returns what the output components show.

@guarded
def next_word_view(text: str, model: str, show: float, temperature: float, top_k: float,
                   top_p: float):
    """Next-token bars (raw beside reshaped), a table and a one-line summary."""
    from lmdemo.plots import next_word as plots

    res = api.next_token(text, model, show, temperature, top_k, top_p)
    entries = res["entries"]
    fig = plots.distribution_bars([e["token"] for e in entries], [e["prob"] for e in entries],
                                  [e["sampling_prob"] for e in entries],
                                  f"{res['model']}: next token")
    summary = (f"Entropy {res['entropy'] / LN2:.2f} bits raw, "
               f"{res['sampling_entropy'] / LN2:.2f} bits reshaped; {res['kept']:,} of "
               f"{res['vocab_size']:,} tokens can still be drawn.")
    if res["message"]:
        summary += f"\n\n{res['message']}"
    rows = [[e["token"], e["id"], round(e["prob"], 5), round(e["sampling_prob"], 5)]
            for e in entries]
    return fig, rows, summary


@guarded
def score_view(sentences: str, model: str):
    """Candidate sentences ranked by log-probability."""
    from lmdemo.plots import next_word as plots

    res = api.score(sentences, model)
    rows = res["sentences"]
    fig = plots.sentence_bars([r["text"] for r in rows], [r["total_log_prob"] for r in rows],
                              f"{res['model']}: which sentence is most likely?")
    table = [[r["text"], round(r["total_log_prob"], 3), round(r["perplexity"], 2)]
             for r in rows]
    return fig, table


@guarded
def attention_view(text: str, model: str, layer: float, head: float, view: str):
    """One head / the mean over heads / the rollout as a heatmap, and every head as a grid."""
    from lmdemo.lab.attention_math import mean_heads, rollout
    from lmdemo.plots import attention as plots

    res = api.attention_result(text, model)
    layer = validate.whole(layer, "layer", 0, res.n_layers - 1)
    head = validate.whole(head, "head", 0, res.n_heads - 1)
    mat, what = {
        "head": (lambda: (res.attentions[layer, head], f"layer {layer}, head {head}")),
        "mean": (lambda: (mean_heads(res.attentions)[layer], f"layer {layer}, mean over heads")),
        "rollout": (lambda: (rollout(res.attentions)[layer], f"rollout through layers 0–{layer}")),
    }[view if view in ("head", "mean", "rollout") else "head"]()
    heat = plots.head_heatmap(res.tokens, mat, f"{res.model_id}: {what}")
    grid = plots.grid_figure(res.attentions, (layer, head))
    info = (f"{res.model_id}: {res.n_layers} layers × {res.n_heads} heads, {len(res.tokens)} "
            f"tokens{' (causal)' if res.causal else ''}. {res.message}").strip()
    return heat, grid, info


@guarded
def positional_view(kind: str, length: float, d_model: float, metric: str):
    """The encoding table, its similarity matrix and the similarity by distance."""
    from lmdemo.lab import positional as pos
    from lmdemo.plots import positional as plots

    length, d_model = pos.check_sizes(length, d_model)
    pe = pos.encoding(kind, length, d_model)  # (length, d_model)
    sim = pos.similarity(pe, metric)  # (length, length)
    stats = pos.diagonal_stats(sim)
    return (plots.heatmap_chart(pe, "encoding", f"{kind} encoding, {length} positions × "
                                f"{d_model}").fig,
            plots.heatmap_chart(sim, "similarity", f"{metric} similarity between positions",
                                "position", "position", zmid=None, colorscale="Viridis").fig,
            plots.diagonal_chart(stats.offsets, stats.mean, stats.spread,
                                 "Similarity by distance"),
            f"Largest spread along a diagonal: {stats.max_spread:.3g} (0 means the similarity "
            "depends on the distance only).")


@guarded
def classify_view(reviews: str, model: str):
    """The first review's class probabilities as bars, a table of every review (a review mostly
    unknown to the model gets "can't tell", not a label; each says how many of its tokens were
    read) and the warnings, one line per review that has one."""
    from lmdemo.plots import sentiment as plots

    items = api.texts_of(reviews, "review")
    preds = api.classify(items, model)
    rows = [[text, f"can't tell (guess: {p['label']})" if p["unsure"] else p["label"],
             round(p["probs"]["positive"], 4), f"{p['tokens_read']} of {p['tokens_total']}"]
            for text, p in zip(items, preds, strict=True)]
    notes = "\n".join(f"- **Review {i}:** {' '.join(p['warnings'])}"
                      for i, p in enumerate(preds, 1) if p["warnings"])
    return plots.probs_figure(preds[0]["probs"]), rows, notes


@guarded
def launch_view(name: str, base: str, method: str, epochs: float, learning_rate: float,
                batch_size: float, max_length: float, limit: float, token: str):
    """Queue a fine-tuning run; show its status."""
    return api.finetune_launch(name, base, method, epochs, learning_rate, batch_size,
                               max_length, limit, token)


@guarded
def estimate_view(base: str, method: str, epochs: float, learning_rate: float,
                  batch_size: float, max_length: float, limit: float) -> str:
    """The run's duration estimated before it starts, said to be an estimate, in one line."""
    est = api.finetune_estimate(base, method, epochs, learning_rate, batch_size, max_length,
                                limit)
    tokens = f"{est['train_tokens'] * est['epochs']:,} training tokens"
    if est["seconds"] is None:
        return (f"No duration estimate yet: nothing has measured how fast this base trains on "
                f"this device ({tokens}). The first run measures it.")
    source = ("typical for this model on a small CPU server" if est["rate_source"] == "typical"
              else f"measured by {est['rate_source']} on this server")
    minutes = est["seconds"] / 60
    duration = f"{est['seconds']:.0f} s" if minutes < 1.5 else f"{minutes:.0f} min"
    return (f"**Estimated duration: about {duration}.** This is an estimate: {est['reviews']:,} "
            f"reviews × {est['epochs']} epochs = {tokens} at about "
            f"{est['rates']['tokens_per_s']:,.0f} tokens/s ({source}), plus the evaluations and "
            "starting the job.")


@guarded
def status_view(name: str, token: str = ""):
    """A run's status (or every run) and, once it has logged steps, its training curves; config,
    log and paths only with the training token when the server has one."""
    from lmdemo.plots import sentiment as plots

    res = api.finetune_status(name, token)
    records = res.get("metrics", [])
    fig = plots.curves_figure(records, name) if any(r.get("event") == "step"
                                                    for r in records) else None
    return res, fig


# ----------------------------------------------------------------------------- inside the model

def inside_figure(name: str, *args, **kwargs):
    """`lmdemo.plots.inside.<name>(*args)`, or None when the figure cannot be drawn (the tab then
    shows the JSON and the tables only)."""
    from lmdemo.plots import inside

    try:
        return getattr(inside, name)(*args, **kwargs)
    except Exception:  # a figure must not hide the numbers that were computed
        log.exception("plots.inside.%s failed", name)
        return None


def _show(token: str) -> str:
    """A token as a table cell: a leading space as ␣, line breaks as ⏎."""
    from lmdemo.plots.common import show_token

    return show_token(token)


def _head_rows(top_heads: list[dict], value: str) -> list[list]:
    return [[h["layer"], h["head"], round(h[value], 4)] for h in top_heads]


@guarded
def lens_view(text: str, model: str, pin: str):
    """The lens grid, the pinned token's curve, a depths × positions table and the JSON."""
    import pandas as pd

    res = api.lens_result(text, model, pin)
    grid = inside_figure("lens_grid", res)
    curve = inside_figure("pinned_curve", res) if res.pinned is not None else None
    columns = [f"{i}: {_show(t)}" for i, t in enumerate(res.tokens)]
    table = pd.DataFrame(
        [[depth] + [f"{_show(t)} ({p:.2f})" for t, p in zip(tokens, probs, strict=True)]
         for depth, tokens, probs in zip(res.depths, res.top_tokens, res.top_probs, strict=True)],
        columns=["depth", *columns])
    info = f"{res.model}: {len(res.depths)} depths × {len(res.tokens)} positions."
    if res.pinned is not None:
        first = res.first_top(res.pinned.id)
        info += (f" {_show(res.pinned.token)} at the last position: p = "
                 f"{res.pinned.at(-1)[-1]:.3f} at the output; "
                 + ("never the top token." if first is None else
                    f"the top token from {res.depths[first]} on."))
    if res.message:
        info += f"\n\n{res.message}"
    return grid, curve, table, info, res.to_json()


@guarded
def heads_view(text: str, model: str, target: str, heads: str, mode: str, show: float):
    """The importance map, the before/after bars of the ablated heads, the top heads, the JSON."""
    imp, ablation = api.heads_result(text, model, target, heads, mode, show)
    fig = inside_figure("head_map", imp.importance,
                        f"{imp.model}: drop in log p({_show(imp.target)}) per head ablated")
    bars = None if ablation is None else inside_figure("ablation_bars", ablation)
    info = f"log p({_show(imp.target)}) of the intact model: {imp.base_logprob:.3f} nats."
    if ablation is not None:
        shown = ", ".join(f"{la}.{h}" for la, h in ablation.heads)
        info += (f" With heads {shown} ablated ({ablation.mode}): "
                 f"{ablation.target_logprob_after:.3f} nats; KL(before ‖ after) = "
                 f"{ablation.kl:.4f} nats.")
    data = dict(imp.to_json(), ablation=None if ablation is None else ablation.to_json())
    return fig, bars, _head_rows(imp.top_heads, "drop"), info, data


@guarded
def patch_view(clean: str, corrupt: str, model: str, clean_answer: str, corrupt_answer: str,
               progress=gr.Progress()):  # noqa: B008 (Gradio injects one per request)
    """The patching grid, a summary and the JSON."""
    def report(done: int, total: int) -> None:
        progress(done / max(1, total), desc=f"{done} of {total} patched runs")

    res = api.patch_result(clean, corrupt, model, clean_answer, corrupt_answer, report)
    info = (f"{res.model}: logit({_show(res.clean_answer)}) − logit({_show(res.corrupt_answer)}) "
            f"= {res.clean_diff:.3f} on the clean run, {res.corrupt_diff:.3f} on the corrupted "
            "one. Each cell: the share of that lead that patching it brings back.")
    if res.message:
        info += f"\n\n{res.message}"
    return inside_figure("patch_grid", res), info, res.to_json()


@guarded
def induction_view(model: str, length: float, seed: float):
    """The loss along the repeated sequence, the induction-score map, the top heads, the JSON."""
    res = api.induction_result(model, length, seed)
    curve = inside_figure("loss_curve", res)
    fig = inside_figure("head_map", res.scores, f"{res.model}: induction score per head")
    info = (f"{res.model}, {res.length} random tokens read twice: mean loss "
            f"{res.loss_first:.2f} nats on the first copy, {res.loss_second:.2f} on the second.")
    return curve, fig, _head_rows(res.top_heads, "score"), info, res.to_json()


# ----------------------------------------------------------------------------- layout
