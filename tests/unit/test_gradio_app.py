"""The Gradio app's handlers and JSON adapters, called directly (no server).

Tiny random models served through a local hub mirror stand in for the embedded ones: a GPT-2 for
next word, scoring and the "Inside the model" endpoints (lens, heads, patching, induction), a BERT
classifier for sentiment; attention uses the embedded `minilm`. The inside endpoints are checked
against the same GPT-2 run here straight from transformers, with hooks written in the test.
Bad input must come back as `gr.Error` carrying the service's message, never another exception.
"""

from __future__ import annotations

import math

import gradio as gr
import plotly.graph_objects as go
import pytest

import gradio_app
import gradio_views
from lmdemo import api
from lmdemo.core import models
from lmdemo.core.errors import UserError
from tests.helpers import CLS, LM, TINY_ID, reference_distribution


@pytest.fixture
def env(tiny_env, tiny_mirror):
    """The shared tiny mirror as the hub, a fresh home; returns the mirror folder."""
    return tiny_mirror


def error_of(fn, *args) -> str:
    """Call a handler that must fail; the message of the gr.Error it raised."""
    with pytest.raises(gr.Error) as info:
        fn(*args)
    return str(info.value.message)


# ----------------------------------------------------------------------------- the Blocks

def test_build_loads_no_model_and_names_the_endpoints(env):
    models.clear_cache()
    demo = gradio_app.build(gradio_app.GradioSettings("127.0.0.1", 7860, 3, 17))
    assert not models._CACHE, "building the app must not load weights"
    names = {fn.api_name for fn in demo.fns.values()}
    for name in ("next_token", "score", "attention", "classify", "positional", "lens", "heads",
                 "patch", "induction", "finetune_launch", "finetune_status", "finetune_cancel"):
        assert name in names
    public = demo.get_api_info()["named_endpoints"]
    assert {"/next_token", "/score", "/attention", "/classify", "/lens", "/heads", "/patch",
            "/induction"} <= set(public)
    assert not any(k.endswith("_view") for k in public), "UI handlers stay off the API page"
    assert demo._queue.max_size == 17
    assert demo._queue.default_concurrency_limit == 3


def test_server_settings_from_env_and_flags(monkeypatch):
    from lmdemo.core.config import gradio_settings

    monkeypatch.setenv("LMDEMO_GRADIO_PORT", "7999")
    monkeypatch.setenv("LMDEMO_GRADIO_CONCURRENCY", "0")
    monkeypatch.setenv("LMDEMO_GRADIO_QUEUE", "nonsense")
    monkeypatch.setenv("LMDEMO_TORCH_THREADS", "3")
    monkeypatch.delenv("LMDEMO_GRADIO_HOST", raising=False)
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    s = gradio_settings()
    assert (s.host, s.port, s.concurrency, s.queue_size, s.threads()) == (
        "127.0.0.1", 7999, 1, 64, 3)
    # Spaces sets GRADIO_SERVER_*; LMDEMO_GRADIO_* wins over them
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "8001")
    monkeypatch.delenv("LMDEMO_GRADIO_PORT")
    assert (gradio_settings().host, gradio_settings().port) == ("0.0.0.0", 8001)
    monkeypatch.setenv("LMDEMO_GRADIO_HOST", "127.0.0.2")
    assert gradio_settings().host == "127.0.0.2"
    assert gradio_app.ServerSettings.from_env() == gradio_settings()  # the old name still works


# ----------------------------------------------------------------------------- next word

def test_next_word_view(env):
    fig, rows, summary = gradio_views.next_word_view("The cat", LM, 5, 0.7, 0, 0.9)
    assert isinstance(fig, go.Figure)
    assert len(rows) == 5 and all(len(r) == 4 for r in rows)
    assert "bits" in summary


def test_next_token_json_matches_transformers(env):
    """The endpoint's numbers against a distribution computed here from transformers: the same
    top tokens and probabilities, the entropy, and what temperature 0 and top-k do to it."""
    p, tok = reference_distribution(env / LM, "The cat")
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))
    entropy = -sum(float(q) * math.log(q) for q in p if q > 0)

    data = api.next_token("The cat", LM, show=5, temperature=1.0)
    assert [e["id"] for e in data["entries"]] == order[:5]
    assert [e["prob"] for e in data["entries"]] == pytest.approx([p[i] for i in order[:5]],
                                                                 abs=1e-5)
    assert [e["token"] for e in data["entries"]] == [tok.decode([i]) for i in order[:5]]
    assert data["entropy"] == pytest.approx(entropy, abs=1e-4)
    assert data["vocab_size"] == len(p) and data["kept"] == len(p)

    greedy = api.next_token("The cat", LM, show=3, temperature=0)
    assert [e["sampling_prob"] for e in greedy["entries"]] == [1.0, 0.0, 0.0]
    assert greedy["entries"][0]["id"] == order[0] and greedy["sampling_entropy"] == 0

    top2 = api.next_token("The cat", LM, show=3, top_k=2)
    mass = p[order[0]] + p[order[1]]
    assert [e["sampling_prob"] for e in top2["entries"]] == pytest.approx(
        [p[order[0]] / mass, p[order[1]] / mass, 0.0], abs=1e-5)
    assert top2["kept"] == 2


@pytest.mark.parametrize(("args", "words"), [
    (("x", LM, 5, -1, 0, 1), "temperature must be between"),
    (("x", LM, 5, 1, -3, 1), "top_k must be a whole number"),
    (("x", LM, 5, 1, 0, 0), "top_p must be greater than 0"),
    (("x", LM, 500, 1, 0, 1), "show must be a whole number from 1 to 50"),
    (("x", "tiny-lstm-nope!", 5, 1, 0, 1), "not a valid Hugging Face Hub id"),
    (("x", "minilm", 5, 1, 0, 1), "needs a causal-lm or recurrent-lm"),
])
def test_next_word_bad_input_is_a_gr_error(env, args, words):
    assert words in error_of(gradio_views.next_word_view, *args)


def test_score_view_ranks_sentences(env):
    fig, table = gradio_views.score_view("The cat sat.\nsat cat The.\n", LM)
    assert isinstance(fig, go.Figure) and len(table) == 2
    assert table[0][1] >= table[1][1]


def test_score_bad_input(env):
    assert "at least one sentence" in error_of(gradio_views.score_view, "  \n ", LM)
    assert "at most 64" in error_of(gradio_views.score_view, "a\n" * 65, LM)


# ----------------------------------------------------------------------------- attention

def test_attention_view_and_json():
    heat, grid, info = gradio_views.attention_view("The movie was good", "minilm", 3, 1, "head")
    assert isinstance(heat, go.Figure) and isinstance(grid, go.Figure)
    assert "6 layers × 12 heads" in info
    for view in ("mean", "rollout"):
        assert isinstance(gradio_views.attention_view("The movie", "minilm", 0, 0, view)[0],
                          go.Figure)
    data = api.attention("The movie was good", "minilm", layer=2, head=5)
    assert data["layers"] == [2] and data["heads"] == [5]
    t = len(data["tokens"])
    assert len(data["attentions"]) == 1 and len(data["attentions"][0]) == 1
    assert len(data["attentions"][0][0]) == t
    assert abs(sum(data["attentions"][0][0][0]) - 1) < 1e-3
    assert data["n_layers"] == 6 and data["n_heads"] == 12


def test_attention_bad_input():
    assert "layer must be a whole number from 0 to 5" in error_of(
        gradio_views.attention_view, "The movie", "minilm", 9, 0, "head")
    assert "head must be a whole number from 0 to 11" in error_of(
        gradio_views.attention_view, "The movie", "minilm", 0, 1.5, "head")
    assert "text is empty" in error_of(gradio_views.attention_view, "  ", "minilm", 0, 0, "head")
    with pytest.raises(UserError, match="layer must be"):
        api.attention("The movie", "minilm", layer=-3)


# ----------------------------------------------------------------------------- positional

def test_positional_view_and_json():
    enc, sim, diag, text = gradio_views.positional_view("sinusoidal", 50, 16, "cosine")
    assert all(isinstance(f, go.Figure) for f in (enc, sim, diag))
    assert "spread" in text
    data = api.positional("sine-only", 4, 6)
    assert len(data["encoding"]) == 4 and len(data["encoding"][0]) == 6
    enc, sim, _, _ = gradio_views.positional_view("sinusoidal", 2048, 256, "cosine")
    for fig in (enc, sim):  # thinned for drawing, but the axes carry the real positions
        assert len(fig.data[0].z) < 2048 and fig.data[0].y[-1] > 2000, fig.data[0].y[-1]


def test_positional_bad_input():
    assert "even" in error_of(gradio_views.positional_view, "sinusoidal", 10, 7, "dot")
    with pytest.raises(UserError, match="kind must be one of"):
        api.positional("cosine-only", 4, 6)


# ----------------------------------------------------------------------------- inside the model
# The mirror's GPT-2 reads one token per character (spaces are dropped) after its start token 0:
# 2 layers x 4 heads of 8 dimensions, 64 positions.

def reference_gpt2(folder):
    """The mirror's GPT-2 loaded straight from transformers (eager attention), and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager").eval()
    return model, AutoTokenizer.from_pretrained(folder)


def ids_of(tok, text: str) -> list[int]:
    return [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]


def has_figure(name: str) -> bool:
    """Whether lmdemo.plots.inside (written alongside this app) can draw `name` yet."""
    try:
        from lmdemo.plots import inside
    except ImportError:
        return False
    return hasattr(inside, name)


def check_figure(fig, name: str) -> None:
    assert isinstance(fig, go.Figure) if has_figure(name) else fig is None


def test_lens_json_matches_the_models_own_predictions(env):
    """The last row is the softmax of the model's logits at every position, the first row the
    embedding output read through the final norm and the unembedding; the pinned token's curve
    is its probability in those rows at the last position."""
    import torch

    model, tok = reference_gpt2(env / LM)
    text, pin = "abcab", "c"
    ids = ids_of(tok, text)
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_hidden_states=True)
        first = torch.softmax(model.lm_head(model.transformer.ln_f(out.hidden_states[0][0])), -1)
        last = torch.softmax(out.logits[0].double(), -1)  # (T, V)
    data = api.lens(text, LM, pin)
    assert data["tokens"] == ["<|endoftext|>", *text]
    assert data["depths"] == ["embedding", "layer 1", "layer 2"]
    assert len(data["top"]) == 3 and all(len(row) == len(ids) for row in data["top"])
    for row, probs in ((data["top"][0], first), (data["top"][-1], last)):
        assert [c["id"] for c in row] == probs.argmax(-1).tolist()
        assert [c["prob"] for c in row] == pytest.approx(probs.max(-1).values.tolist(), abs=1e-5)
        assert [c["token"] for c in row] == [tok.decode([int(i)]) for i in probs.argmax(-1)]
    pin_id = tok(pin, add_special_tokens=False)["input_ids"][0]
    assert data["pin"]["id"] == pin_id
    assert data["pin"]["probs"][0] == pytest.approx(float(first[-1, pin_id]), abs=1e-6)
    assert data["pin"]["probs"][-1] == pytest.approx(float(last[-1, pin_id]), abs=1e-6)
    assert "pin" not in api.lens(text, LM, "")  # empty: nothing pinned

    grid, curve, table, info, shown = gradio_views.lens_view(text, LM, pin)
    check_figure(grid, "lens_grid")
    check_figure(curve, "pinned_curve")
    assert table.shape == (3, len(ids) + 1) and list(table["depth"]) == data["depths"]
    assert shown == data and "3 depths × 6 positions" in info


def _zero_heads(model, heads):
    """Forward pre-hooks that zero the given (layer, head) outputs before each layer's c_proj."""
    size = model.config.n_embd // model.config.n_head

    def hook(layer):
        def pre(_module, args):
            x = args[0].clone()
            for la, h in heads:
                if la == layer:
                    x[..., h * size:(h + 1) * size] = 0
            return (x,)
        return pre

    return [model.transformer.h[la].attn.c_proj.register_forward_pre_hook(hook(la))
            for la in {la for la, _ in heads}]


def _last_logprobs(model, ids, heads=()):
    import torch

    handles = _zero_heads(model, heads)
    try:
        with torch.no_grad():
            return torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)
    finally:
        for h in handles:
            h.remove()


def test_heads_json_matches_heads_zeroed_one_by_one(env):
    """Every head of the map against a forward pass with that head zeroed by a hook written here;
    the ablation of two heads together against both zeroed at once."""
    model, tok = reference_gpt2(env / LM)
    text, target = "abcabca", "b"
    ids, tid = ids_of(tok, text), tok(target, add_special_tokens=False)["input_ids"][0]
    base = _last_logprobs(model, ids)
    want = [[float(base[tid] - _last_logprobs(model, ids, [(la, h)])[tid]) for h in range(4)]
            for la in range(2)]

    data = api.heads(text, LM, target)
    assert data["target_id"] == tid and data["ablation"] is None
    assert data["base_logprob"] == pytest.approx(float(base[tid]), abs=1e-5)
    assert data["importance"] == [pytest.approx(row, abs=1e-4) for row in want]
    best = max(((la, h) for la in range(2) for h in range(4)), key=lambda c: want[c[0]][c[1]])
    assert (data["top_heads"][0]["layer"], data["top_heads"][0]["head"]) == best

    both = api.heads(text, LM, target, "1.3, 0.0", "zero", 3)
    after = _last_logprobs(model, ids, [(1, 3), (0, 0)])
    ab = both["ablation"]
    assert ab["heads"] == [[0, 0], [1, 3]] and len(ab["before"]) == len(ab["after"]) == 3
    assert [t["id"] for t in ab["after"]] == after.argsort(descending=True)[:3].tolist()
    assert [t["prob"] for t in ab["after"]] == pytest.approx(after.exp().sort(
        descending=True).values[:3].tolist(), abs=1e-5)
    assert ab["target_logprob_after"] == pytest.approx(float(after[tid]), abs=1e-5)
    kl = float((base.exp() * (base - after)).sum())
    assert ab["kl"] == pytest.approx(kl, abs=1e-5)
    assert api.heads(text, LM, target, [[1, 3], [0, 0]], show=3)["ablation"] == ab  # as a list

    fig, bars, table, info, shown = gradio_views.heads_view(text, LM, target, "1.3, 0.0", "zero", 3)
    check_figure(fig, "head_map")
    check_figure(bars, "ablation_bars")
    assert shown == both and table[0][:2] == list(best) and "KL" in info
    assert gradio_views.heads_view(text, LM, target, "", "mean", 3)[1] is None  # no heads: no bars


def test_patch_json_matches_a_hand_patched_run(env):
    """The logit differences of the clean and corrupted runs, and patched cells against runs
    patched here by a hook on the block: patching the one differing token's embedding output
    gives the clean run back (recovered 1); cells before it change nothing (0)."""
    import torch

    model, tok = reference_gpt2(env / LM)
    clean, corrupt = "abcd", "abxd"
    clean_ids, corrupt_ids = ids_of(tok, clean), ids_of(tok, corrupt)
    with torch.no_grad():
        clean_out = model(torch.tensor([clean_ids]), output_hidden_states=True)
        corrupt_logits = model(torch.tensor([corrupt_ids])).logits[0, -1]
    # the answers: the characters whose logits the change of prompt moves most, up and down
    shift = (clean_out.logits[0, -1] - corrupt_logits)[1:]  # (V - 1,) without the start token
    g, b = int(shift.argmax()) + 1, int(shift.argmin()) + 1
    good, bad = tok.decode([g]), tok.decode([b])

    def diff(logits):
        return float(logits[g] - logits[b])

    def patched(position: int) -> float:  # the output of block 0 (depth 1) patched at position
        def hook(_module, _args, output):  # a block returns a tensor or a tuple, by version
            hidden = (output[0] if isinstance(output, tuple) else output).clone()  # (1, T, d)
            hidden[0, position] = clean_out.hidden_states[1][0, position]
            return (hidden, *output[1:]) if isinstance(output, tuple) else hidden

        handle = model.transformer.h[0].register_forward_hook(hook)
        try:
            with torch.no_grad():
                return diff(model(torch.tensor([corrupt_ids])).logits[0, -1])
        finally:
            handle.remove()

    data = api.patch(clean, corrupt, LM, good, bad)
    assert data["tokens"][3] == "c" and data["corrupt_tokens"][3] == "x"
    assert data["clean_answer"] == {"token": good, "id": g}
    assert data["clean_diff"] == pytest.approx(diff(clean_out.logits[0, -1]), abs=1e-4)
    assert data["corrupt_diff"] == pytest.approx(diff(corrupt_logits), abs=1e-4)
    assert len(data["recovered"]) == 3 and all(len(r) == 5 for r in data["recovered"])
    for position in (3, 4):
        assert data["patched_diff"][1][position] == pytest.approx(patched(position), abs=1e-4)
    assert data["recovered"][0][3] == pytest.approx(1, abs=1e-4)
    assert data["recovered"][0][:3] == pytest.approx([0, 0, 0], abs=1e-6)

    grid, info, shown = gradio_views.patch_view(clean, corrupt, LM, good, bad)
    check_figure(grid, "patch_grid")
    assert shown == data and "clean run" in info


def test_patch_with_no_prompts_runs_the_first_preset(env, monkeypatch):
    from lmdemo.lab import patching

    seen = []

    class Done:
        def to_json(self):
            return {"ok": True}

    monkeypatch.setattr(patching, "patch", lambda *args: seen.append(args) or Done())
    assert api.patch("", "  ", LM, "", " Rome") == {"ok": True}
    assert seen == [(LM, *patching.PRESETS[0], None, " Rome", None)]


def test_induction_json_matches_losses_and_scores_computed_here(env):
    """The sequence is the start token and one copy of distinct tokens twice; the losses and the
    induction scores against the model's own logits and attention weights, looped here."""
    import torch

    model, tok = reference_gpt2(env / LM)
    n = 12
    data = api.induction(LM, n, 3)
    ids = data["token_ids"]
    assert data["length"] == n and data["seed"] == 3 and len(ids) == 2 * n + 1
    assert ids[0] == tok.bos_token_id and ids[1:n + 1] == ids[n + 1:]
    assert len(set(ids[1:n + 1])) == n and tok.bos_token_id not in ids[1:]
    with torch.no_grad():
        out = model(torch.tensor([ids]), output_attentions=True)
    logp = torch.log_softmax(out.logits[0].double(), -1)
    losses = [-float(logp[j - 1, ids[j]]) for j in range(1, 2 * n + 1)]
    assert data["losses"] == pytest.approx(losses, abs=1e-4)
    assert data["loss_first"] == pytest.approx(sum(losses[:n]) / n, abs=1e-4)
    assert data["loss_second"] == pytest.approx(sum(losses[n:]) / n, abs=1e-4)
    scores = [[sum(float(out.attentions[la][0, h, q, q - n + 1]) for q in range(n + 1, 2 * n + 1))
               / n for h in range(4)] for la in range(2)]
    assert data["scores"] == [pytest.approx(row, abs=1e-5) for row in scores]
    assert api.induction(LM, n, "3")["token_ids"] == ids  # the seed decides the sequence
    assert api.induction(LM, n, 4)["token_ids"] != ids

    curve, fig, table, info, shown = gradio_views.induction_view(LM, n, 3)
    check_figure(curve, "loss_curve")
    check_figure(fig, "head_map")
    assert shown == data and len(table) == 8 and "12 random tokens read twice" in info


@pytest.mark.parametrize(("view", "args", "words"), [
    ("lens_view", ("", LM, ""), "The text is empty"),
    ("lens_view", ("a" * 2001, LM, ""), "at most 2,000 are accepted"),
    ("lens_view", ("abc", LM, "abc"), "must be exactly one token"),
    ("lens_view", ("abc", "minilm", ""), "predicts no next token"),
    ("lens_view", ("abc", LM, 5), "The pinned token must be text"),
    ("heads_view", ("abc", LM, "", "", "zero", 5), "Give a target token"),
    ("heads_view", ("abc", LM, "a", "9.9", "zero", 5), "There is no head 9.9"),
    ("heads_view", ("abc", LM, "a", "1-2", "zero", 5), "Could not read '1-2' as a head"),
    ("heads_view", ("abc", LM, "a", "", "half", 5), "Unknown ablation 'half'"),
    ("heads_view", ("abc", LM, "a", "", "zero", 0), "show must be a whole number from 1 to 50"),
    ("heads_view", ("abc", LM, "ab", "", "zero", 5), "pick a single token"),
    ("patch_view", ("abcd", "abxde", LM, "", ""), "they must be the same length"),
    ("patch_view", ("abcd", "", LM, "", ""), "Give both a clean and a corrupted prompt"),
    ("patch_view", ("abcd", "abxd", LM, "ef", ""), "The clean answer must be exactly one token"),
    ("patch_view", ("abcd", "abcd", LM, "", ""), "are the same tokens"),
    ("induction_view", (LM, 1, 0), "length must be a whole number from 2 to 200"),
    ("induction_view", (LM, 2.5, 0), "length must be a whole number"),
    ("induction_view", (LM, 40, 0), "between 2 and 31"),  # 64 positions: 2 x 31 + 1
    ("induction_view", (LM, 10, -1), "seed must be a whole number from 0"),
    ("induction_view", ("tiny-gru", 10, 0), "needs a causal-lm model"),
])
def test_inside_bad_input_is_a_gr_error(env, view, args, words):
    assert words in error_of(getattr(gradio_views, view), *args)


def test_an_inside_figure_that_cannot_be_drawn_leaves_the_numbers():
    assert gradio_views.inside_figure("lens_grid", object()) is None  # not a lens result
    assert gradio_views.inside_figure("no_such_figure", object()) is None


# ----------------------------------------------------------------------------- sentiment

def test_classify_view(env):
    """Probabilities against the classifier run here straight from transformers."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    texts = ["a good film", "a bad film"]
    tok = AutoTokenizer.from_pretrained(env / CLS)
    ref = AutoModelForSequenceClassification.from_pretrained(env / CLS).eval()
    with torch.no_grad():
        want = [float(torch.softmax(ref(**tok(t, return_tensors="pt")).logits[0], -1)[1])
                for t in texts]  # P(positive) of each review

    fig, rows, notes = gradio_views.classify_view("\n".join(texts), CLS)
    assert isinstance(fig, go.Figure)
    assert [r[0] for r in rows] == texts
    assert [r[2] for r in rows] == pytest.approx(want, abs=1e-4)
    assert [r[3] for r in rows] == ["5 of 5", "5 of 5"]  # [CLS] a good film [SEP]
    # this tiny classifier's tokenizer turns every word into [UNK]: it can only guess, and says so
    assert all(r[1] == f"can't tell (guess: {p})" for r, p in zip(
        rows, ["positive" if w >= 0.5 else "negative" for w in want], strict=True))
    assert notes.count("unknown to the model") == 2
    preds = api.classify(texts, CLS)
    assert [p["probs"]["positive"] for p in preds] == pytest.approx(want, abs=1e-5)
    assert [p["label"] for p in preds] == ["positive" if w >= 0.5 else "negative" for w in want]
    assert api.classify("a good film", CLS)[0] == preds[0]  # one string is one review


def test_unreadable_and_long_reviews_are_flagged_in_the_tab_and_the_api(env):
    """A review mostly unknown to the classifier (every word is [UNK] to this tiny one's
    tokenizer) gets "can't tell", not a label, and says why; a review over its 64 positions says
    how much of it was read. The API's answer carries the same flags and warnings."""
    unknown, long = "wonderful acting throughout", "a good film " * 40
    _, rows, notes = gradio_views.classify_view(f"{unknown}\n{long}", CLS)
    assert rows[0][1].startswith("can't tell (guess: ") and rows[0][3] == "5 of 5"
    assert rows[1][3] == "64 of 122"
    review_2 = notes.split("**Review 2:**")[1]
    assert "**Review 1:**" in notes and "unknown to the model" in notes.split("**Review 2")[0]
    assert "Only the first 64 of the review's 122 tokens were read" in review_2
    first, second = api.classify([unknown, long], CLS)
    assert first["unsure"] is True and first["warnings"] and not first["truncated"]
    assert second["truncated"] is True and (second["tokens_read"], second["tokens_total"],
                                            second["max_length"]) == (64, 122, 64)


def test_classify_bad_input(env):
    assert "at least one review" in error_of(gradio_views.classify_view, "", CLS)
    assert "needs a classifier" in error_of(gradio_views.classify_view, "good", "minilm")


def test_finetune_launch_refuses_bad_values_and_status_lists_runs(env):
    args = ["ok-name", "minilm", "lora", 1, 0, 16, 128, 0, ""]
    bad_name = ["../escape"] + args[1:]
    assert "not a valid run name" in error_of(gradio_views.launch_view, *bad_name)
    bad_epochs = args[:3] + [-1] + args[4:]
    assert "Epochs must be a whole number from 1 to 100 (got -1)" in error_of(
        gradio_views.launch_view, *bad_epochs)
    bad_method = args[:2] + ["half"] + args[3:]
    assert "Method must be one of 'lora', 'full' (got 'half')" in error_of(
        gradio_views.launch_view, *bad_method)
    bad_rate = args[:4] + ["fast"] + args[5:]
    assert "Learning rate must be a number, not 'fast'" in error_of(gradio_views.launch_view,
                                                                    *bad_rate)
    status, fig = gradio_views.status_view("")
    assert status == {"runs": []} and fig is None
    assert "No run is called" in error_of(gradio_views.status_view, "never-made")


def test_status_view_draws_the_curves_of_a_run(env, tmp_path):
    import json

    from lmdemo.training import jobs

    folder = jobs.create_run("curves", {"base": "minilm"})
    records = [{"event": "step", "step": i, "loss": 1 / (i + 1), "progress": i / 4}
               for i in range(4)]
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    jobs.update_status(folder, state="done", progress=1.0)
    status, fig = gradio_views.status_view("curves")
    assert status["state"] == "done" and len(status["metrics"]) == 4
    assert isinstance(fig, go.Figure)
    assert gradio_views.status_view("")[0]["runs"][0]["name"] == "curves"


def test_finetune_token_is_checked(env, monkeypatch):
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    args = ["tok-run", "minilm", "lora", 1, 0, 16, 128, 0, "wrong"]
    assert "training token" in error_of(gradio_views.launch_view, *args)


# ----------------------------------------------------------------------------- error mapping

def test_unexpected_errors_become_short_gr_errors():
    @gradio_views.guarded
    def broken(x: int) -> int:
        raise RuntimeError("boom " * 200)

    message = error_of(broken, 1)
    assert message.startswith("broken could not be computed: RuntimeError: boom")
    assert len(message) < 400


def test_status_view_hides_run_details_without_the_token(env, monkeypatch):
    from lmdemo.training import jobs

    folder = jobs.create_run("hidden", {"base": "minilm"})
    jobs.update_status(folder, state="done", progress=1.0)  # finished: listing starts nothing
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    status, _ = gradio_views.status_view("hidden")
    assert "config" not in status and "log_tail" not in status
    status, _ = gradio_views.status_view("hidden", "s3cret")
    assert status["config"]["base"] == "minilm" and "log_tail" in status
    assert "config" not in gradio_views.status_view("", "wrong")[0]["runs"][0]


def test_no_pid_or_server_path_reaches_a_visitor(env, monkeypatch):
    """On a server without a training token every visitor sees a run's config, log and error,
    but no process id, and no server path in the error or the log; the run as launched is shown
    the same way. Only the holder of a server's token sees them as they are."""
    from lmdemo.training import jobs

    folder = jobs.create_run("leaky", {"base": "minilm"})
    jobs.update_status(folder, state="failed", progress=0.3, pid=4242, pid_started=1.0,
                       worker_pid=4343, error=f"OSError: cannot write {folder}/model/x")
    (folder / "log.txt").write_text(f'Traceback\n  File "{folder}/a.py", line 1\npid: 4242\n')
    for shown in (gradio_views.status_view("leaky")[0], api.finetune_status("")["runs"][0]):
        text = str(shown)
        assert shown["state"] == "failed" and shown["config"]["base"] == "minilm"
        assert "4242" not in str(shown["status"]) and "4343" not in text
        assert str(folder) not in text and "…/x" in shown["status"]["error"], text
    assert str(folder) not in gradio_views.status_view("leaky")[0]["log_tail"]
    launched = gradio_views.launch_view("new-run", TINY_ID, "lora", 1, 0, 16, 32, 5, "")
    assert launched["name"] == "new-run" and "pid" not in launched["status"]
    jobs.cancel("new-run") if jobs.get_run("new-run").state in ("queued", "running") else None
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    assert gradio_views.status_view("leaky", "s3cret")[0]["status"]["pid"] == 4242  # operator
    assert "pid" not in str(gradio_views.status_view("leaky", "nope")[0])


@pytest.mark.parametrize(("headers", "allowed", "ok"), [
    ({}, (), True),
    ({"host": "a.example", "origin": "https://a.example"}, (), True),
    ({"host": "a.example:7860", "origin": "http://a.example:7860"}, (), True),
    ({"host": "a.example", "origin": "https://b.example"}, (), False),
    ({"host": "a.example", "origin": "https://b.example"}, ("https://b.example/",), True),
    ({"host": "a.example", "origin": "https://b.example"}, ("*",), True),
    ({"host": "a.example", "origin": "null"}, (), False),
])
def test_same_origin_guard(headers, allowed, ok):
    from starlette.datastructures import Headers

    guard = gradio_app.SameOriginOnly(None, allowed)
    assert guard.allows(Headers(headers)) is ok


def test_cancel_a_queued_run_needs_the_token(env, monkeypatch):
    from lmdemo.training import jobs

    folder = jobs.create_run("waiting", {"base": "minilm"})  # queued, never scheduled here
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    with pytest.raises(UserError, match="token"):
        api.finetune_cancel("waiting", "wrong")
    assert jobs.read_status(folder)["state"] == "queued"  # a wrong token changes nothing
    out = api.finetune_cancel("waiting", "s3cret")
    assert out == {"name": "waiting", "state": "cancelled", "status": out["status"]}
    assert jobs.read_status(folder)["state"] == "cancelled"
    assert "only queued or running" in error_of(gradio_views.guarded(api.finetune_cancel),
                                                "waiting", "s3cret")
    assert "Give the name" in error_of(gradio_views.guarded(api.finetune_cancel), "  ", "")


def test_the_fine_tune_tab_estimates_the_duration_before_the_start(env):
    from lmdemo.training import duration, reviews

    shown = gradio_views.estimate_view("minilm", "lora", 2, 0, 16, 64, 0)
    est = api.finetune_estimate("minilm", "lora", 2, None, 16, 64)
    n = len(reviews.shipped("train"))
    assert est["reviews"] == n and est["epochs"] == 2 and est["rate_source"] == "typical"
    assert est["seconds"] == pytest.approx(duration.run_seconds(
        est["train_tokens"], est["steps"], est["val_tokens"], 2,
        duration.Rates(**est["rates"])))
    assert shown.startswith("**Estimated duration: about ") and "This is an estimate" in shown
    assert f"{n:,} reviews × 2 epochs = {2 * est['train_tokens']:,} training tokens" in shown
    unknown = gradio_views.estimate_view(TINY_ID, "lora", 1, 0, 16, 32, 100)
    assert unknown.startswith("No duration estimate yet") and "3,200" not in unknown
    assert "Epochs must be" in error_of(gradio_views.estimate_view, "minilm", "lora", 0, 0, 16,
                                        64, 0)
