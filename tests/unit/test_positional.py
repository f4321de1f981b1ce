"""Positional encodings: values against the paper's formula computed independently, the rotation
property of sinusoids (and its failure for sine-only), RoPE's relative property, learned tables
equal to the models' own weights, the position ablation, and the CLI's shape and errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lmdemo.core.errors import UserError
from lmdemo.lab import positional as pos
from lmdemo.lab import rotary
from tests.helpers import save_tiny_gpt2


def paper_pe(length: int, d: int) -> list[list[float]]:
    """The paper's formula, one number at a time with the math module."""
    rows = []
    for p in range(length):
        row = []
        for col in range(d):
            i = col // 2
            angle = p / 10000 ** (2 * i / d)
            row.append(math.sin(angle) if col % 2 == 0 else math.cos(angle))
        rows.append(row)
    return rows


@pytest.mark.parametrize(("length", "d"), [(1, 2), (7, 6), (50, 64), (33, 10)])
def test_sinusoidal_equals_the_formula(length, d):
    np.testing.assert_allclose(pos.sinusoidal(length, d), paper_pe(length, d), atol=1e-12)


def test_sinusoidal_known_values():
    pe = pos.sinusoidal(3, 4)
    assert pe[0].tolist() == [0.0, 1.0, 0.0, 1.0]
    assert pe[2, 0] == pytest.approx(math.sin(2)) and pe[2, 3] == pytest.approx(math.cos(0.02))


def test_sine_only_equals_its_formula():
    length, d = 20, 9
    want = [[math.sin(i / 10000 ** (2 * j / d)) for j in range(d)] for i in range(length)]
    np.testing.assert_allclose(pos.sine_only(length, d), want, atol=1e-12)


@pytest.mark.parametrize("k", [1, 5, 37])
def test_rotation_maps_position_p_to_p_plus_k(k):
    d, length = 16, 80
    m = pos.rotation(k, d)
    pe = np.array(paper_pe(length, d))
    np.testing.assert_allclose(pe[:-k] @ m.T, pe[k:], atol=1e-6)  # M_k · PE(p) = PE(p+k)
    np.testing.assert_allclose(m @ m.T, np.eye(d), atol=1e-12)  # a rotation
    off_block = m.copy()
    for i in range(d // 2):
        off_block[2 * i:2 * i + 2, 2 * i:2 * i + 2] = 0
    assert not off_block.any()  # block-diagonal
    check = pos.offset_check("sinusoidal", length, d, k)
    assert check.max_error < 1e-9


def test_sine_only_has_no_rotation():
    check = pos.offset_check("sine-only", 80, 16, 5)
    assert check.max_error > 0.5
    # PE(0) = 0, so any matrix's error at p = 0 is max |PE(5)|
    assert check.lower_bound == pytest.approx(np.abs(pos.sine_only(6, 16)[5]).max())
    assert not pos.sine_only(1, 16).any()


def test_sinusoidal_similarity_depends_on_distance_only():
    for metric in pos.METRICS:
        stats = pos.diagonal_stats(pos.similarity(pos.sinusoidal(60, 32), metric))
        assert stats.max_spread < 1e-9
        assert stats.mean[0] == pytest.approx(16.0 if metric == "dot" else 1.0)
    assert pos.diagonal_stats(pos.similarity(pos.sine_only(60, 32), "dot")).max_spread > 0.5


def test_distances_match_brute_force():
    pe = pos.sine_only(40, 4)
    report = pos.distances(pe, top=3)
    brute = sorted((float(np.linalg.norm(pe[p] - pe[q])), p, q)
                   for p in range(40) for q in range(p + 1, 40))
    assert [(p, q) for _, p, q in brute[:3]] == [(p, q) for p, q, _ in report.closest_pairs]
    assert report.min_distance == pytest.approx(brute[0][0], abs=1e-6)
    # sin/cos keeps every position apart by the same nearest distance; sine-only does not
    near = pos.distances(pos.sinusoidal(40, 4)).nearest
    assert near.min() > 10 * report.min_distance


@pytest.mark.parametrize(("length", "d", "word"), [(10, 7, "even"), (10, 0, "at least 2"),
                                                    (10, 4096, "capped"), (0, 8, "at least 1"),
                                                    (100_000, 8, "capped")])
def test_bad_sizes_say_what_to_do(length, d, word):
    with pytest.raises(UserError, match=word):
        pos.sinusoidal(length, d)


def test_rotate_equals_explicit_2x2_rotations():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 6))
    positions = np.array([0, 1, 2, 7, 30])
    got = rotary.rotate(x, positions)
    for t, m in enumerate(positions):
        for i in range(3):
            a = m / 10000 ** (2 * i / 6)
            r = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
            np.testing.assert_allclose(got[t, 2 * i:2 * i + 2], r @ x[t, 2 * i:2 * i + 2],
                                       atol=1e-12)


def test_rope_scores_depend_on_offset_only():
    rc = rotary.relative_check(40, 16, seed=3)
    assert rc.max_deviation < 1e-5
    assert rc.max_additive_deviation > 1.0  # added sinusoids do depend on absolute position
    # independently: q at m, k at n equals q at 0, k at n - m
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal(16), rng.standard_normal(16)
    for m, n in [(3, 10), (20, 27), (0, 7)]:
        score = (rotary.rotate(q[None], [m]) @ rotary.rotate(k[None], [n]).T).item()
        assert score == pytest.approx(rc.by_offset[rc.offsets == 7].item(), abs=1e-5)
        assert score == pytest.approx(rc.scores[m, n], abs=1e-5)


def test_rope_matches_transformers_rotate_half_after_deinterleaving():
    import torch
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    d, t = 8, 6
    x = np.random.default_rng(0).standard_normal((t, d))
    ours = rotary.rotate(x, np.arange(t))
    perm = list(range(0, d, 2)) + list(range(1, d, 2))  # interleaved pairs -> halves
    freqs = np.outer(np.arange(t), pos.frequencies(d))  # (T, d/2)
    emb = torch.tensor(np.concatenate([freqs, freqs], axis=1))[None]  # (1, T, d)
    xt = torch.tensor(x[:, perm])[None, None]  # (1, 1, T, d)
    hf, _ = apply_rotary_pos_emb(xt, xt, emb.cos(), emb.sin())
    np.testing.assert_allclose(hf[0, 0].numpy(), ours[:, perm], atol=1e-10)


def test_pair_path_stays_on_the_circle_and_turns_by_theta():
    path = rotary.pair_path(10, 8, 1)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 1.0)
    theta = 1 / 10000 ** (2 / 8)
    np.testing.assert_allclose(path[3], [math.cos(3 * theta), math.sin(3 * theta)], atol=1e-12)


def test_minilm_learned_table_is_its_own_weights():
    from lmdemo.core.models import load

    lt = pos.learned_table("minilm", 20)
    weights = load("minilm").model.embeddings.position_embeddings.weight.detach().numpy()
    assert lt.name.endswith("position_embeddings") and lt.total_positions == weights.shape[0]
    np.testing.assert_array_equal(lt.table, weights[:20])
    coords, ratios = pos.pca_path(lt.table)
    x = weights[:20].astype(np.float64) - weights[:20].mean(axis=0)
    eig, vec = np.linalg.eigh(x.T @ x)  # an independent PCA: the covariance's eigenvectors
    eig, vec = eig[::-1], vec[:, ::-1]
    np.testing.assert_allclose(ratios, eig[:2] / eig.sum(), rtol=1e-8)
    np.testing.assert_allclose(np.abs(coords), np.abs(x @ vec[:, :2]), atol=1e-6)


def test_gpt2_wpe_from_a_hub_mirror(tmp_path, monkeypatch):
    from lmdemo.core.models import clear_cache

    model = save_tiny_gpt2(tmp_path / "distilgpt2")
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))
    clear_cache()
    try:
        lt = pos.learned_table("distilgpt2")
        assert lt.name == "transformer.wpe"
        np.testing.assert_array_equal(lt.table, model.transformer.wpe.weight.detach().numpy())
    finally:
        clear_cache()


def test_models_without_a_position_table_give_a_clear_message():
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    with pytest.raises(UserError, match="no learned position embeddings"):
        pos.learned_table("tiny-lstm")
    torch.manual_seed(0)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32,
                                         num_hidden_layers=1, num_attention_heads=2))
    with pytest.raises(UserError, match="rotary"):
        pos.position_table(llama)


def test_ablation_on_a_tiny_gpt2(tmp_path):
    import torch

    from lmdemo.lab.position_ablation import ablate_model, broken_positions

    model = save_tiny_gpt2(tmp_path / "m")
    model.config._attn_implementation = "eager"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "m")
    text = "abcdefgh"
    r = ablate_model(model, tok, text, "zeros", layer=1, head=2)
    ids = torch.tensor([tok(text)["input_ids"]])
    with torch.inference_mode():
        p = torch.softmax(model(ids).logits[0, -1], -1)
        q = torch.softmax(model(ids, position_ids=torch.zeros_like(ids)).logits[0, -1], -1)
    assert r.tokens == list(text) and r.position_ids == [0] * 8
    assert r.kl == pytest.approx(float((p * (p / q).log()).sum()), rel=1e-4, abs=1e-7)
    assert r.kl > 0 and r.top_before[0][1] == pytest.approx(float(p.max()), rel=1e-5)
    assert r.top_after[0][1] == pytest.approx(float(q.max()), rel=1e-5)
    assert r.attention_before.shape == (8, 8)
    np.testing.assert_allclose(r.attention_after.sum(1), 1, atol=1e-5)
    assert np.triu(r.attention_before, 1).max() == 0  # causal
    assert sorted(broken_positions("shuffle", 8, 1)) == list(range(8))
    assert broken_positions("reverse", 3) == [2, 1, 0]
    with pytest.raises(UserError, match="2 tokens"):
        ablate_model(model, tok, "a")
    with pytest.raises(UserError, match="Layer"):
        ablate_model(model, tok, "abc", layer=9)


def test_ablation_refuses_recurrent_models():
    from lmdemo.lab.position_ablation import ablate

    with pytest.raises(UserError, match="recurrent"):
        ablate("tiny-lstm", "hello there")


def run_cli(capsys, *argv):
    from lmdemo.cli import main

    code = main(["positional", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_the_matrix(capsys):
    code, out, _ = run_cli(capsys, "--kind", "sinusoidal", "--d-model", "8", "--length", "5",
                           "--json")
    assert code == 0
    matrix = json.loads(out)["matrix"]
    assert len(matrix) == 5 and all(len(r) == 8 for r in matrix)
    np.testing.assert_allclose(matrix, paper_pe(5, 8), atol=1e-12)
    code, out, _ = run_cli(capsys, "--kind", "learned", "--model", "minilm", "--length", "3",
                           "--json")
    assert code == 0 and np.asarray(json.loads(out)["matrix"]).shape == (3, 384)
    for kind in ("sine-only", "rotary"):
        code, out, _ = run_cli(capsys, "--kind", kind, "--d-model", "6", "--length", "4", "--json")
        assert code == 0 and np.asarray(json.loads(out)["matrix"]).shape == (4, 6)


@pytest.mark.parametrize("argv", [["--d-model", "7"], ["--length", "0"], ["--length", "99999"],
                                  ["--d-model", "4096"], ["--kind", "learned", "--model",
                                                          "tiny-lstm"]])
def test_cli_bad_input_exits_2_with_a_message(capsys, argv):
    code, out, err = run_cli(capsys, *argv, "--json")
    assert code == 2 and out == "" and err.startswith("error: ") and "Traceback" not in err


# ------------------------------------------------------------ one result per panel of the page

def test_panel_views_hold_the_same_numbers_as_the_services():
    v = pos.sinusoidal_view(40, 16)
    np.testing.assert_array_equal(v.pe, pos.sinusoidal(40, 16))
    assert v.wavelengths[0] == pytest.approx(2 * math.pi)
    assert v.wavelengths[-1] == pytest.approx(2 * math.pi * 10000 ** (14 / 16))
    s = pos.similarity_view("sine-only", "cosine", 30, 8)
    np.testing.assert_array_equal(s.sim, pos.similarity(pos.sine_only(30, 8), "cosine"))
    assert s.stats.max_spread == pos.diagonal_stats(s.sim).max_spread
    o = pos.offset_view(40, 16, 3)
    assert set(o.checks) == set(pos.ENCODINGS) and o.k == 3
    np.testing.assert_array_equal(o.corner, pos.rotation(3, 16)[:6, :6])
    assert pos.offset_view(5, 2, 1).corner.shape == (2, 2)  # narrower than the corner
    d = pos.sine_only_view(30, 8)
    assert d.reports["sine-only"].min_distance == pos.distances(pos.sine_only(30, 8)).min_distance
    assert pos.wave_dims(64) == [0, 1, 6, 7] and pos.wave_dims(4) == [0, 1]


def test_learned_view_of_minilm():
    v = pos.learned_view("minilm", 20)
    assert (v.model_id, v.shown, v.width) == ("minilm", 20, 384) and v.total_positions == 512
    assert v.coords.shape == (20, 2) and v.sim.shape == (20, 20)
    np.testing.assert_array_equal(v.table, pos.learned_table("minilm", 20).table)


def test_rotary_view_combines_the_pair_and_the_relative_check():
    v = rotary.rotary_view(30, 8, 1, 10)
    np.testing.assert_array_equal(v.path, rotary.pair_path(10, 8, 1))
    assert v.theta == pytest.approx(1 / 10000 ** (2 / 8))
    assert v.check.max_deviation == rotary.relative_check(30, 8).max_deviation
    with pytest.raises(UserError, match="pair"):
        rotary.rotary_view(30, 8, 4, 10)


def test_page_charts_are_named_and_thinned():
    from lmdemo.plots import positional as plots

    big = pos.sinusoidal_view(pos.LIMITS.max_length, pos.LIMITS.max_d_model)
    (heat,) = plots.sinusoidal_charts(big)
    assert heat.name == "sinusoidal-encoding" and heat.thinned
    assert heat.shape == (pos.LIMITS.max_length, pos.LIMITS.max_d_model)
    assert heat.data.shape[0] <= pos.LIMITS.max_rows
    assert heat.data.shape[1] <= pos.LIMITS.max_cols
    small = pos.sinusoidal_view(10, 8)
    assert plots.sinusoidal_charts(small)[0].steps == (1, 1)
    (wave,) = plots.wave_charts(small, [0, 3, 99])  # a dimension that does not exist is left out
    assert list(wave.data.columns) == ["dim 0", "dim 3"]
    names = [c.name for c in plots.similarity_charts(pos.similarity_view("sinusoidal", "dot", 9,
                                                                         4))]
    assert names == ["similarity-sinusoidal-dot", "diagonals-sinusoidal-dot"]
    o = pos.offset_view(20, 8, 2)
    assert plots.offset_charts(o)[0].name == "offset-errors-k2"
    assert plots.corner_table(o).shape == (6, 6)
    table = plots.closest_pairs_table(pos.sine_only_view(20, 8))
    assert list(table.columns) == ["position p", "position q", "distance"] and len(table) == 10
    assert [c.name for c in plots.rotary_charts(rotary.rotary_view(12, 8, 0, 5))] == [
        "rope-pair-0", "rope-deviation", "rope-scores"]


def test_thinned_heatmaps_keep_the_real_positions_on_their_axes():
    from lmdemo.plots import positional as plots

    n, d = pos.LIMITS.max_length, pos.LIMITS.max_d_model
    (heat,) = plots.sinusoidal_charts(pos.sinusoidal_view(n, d))
    trace = heat.fig.data[0]
    rs, cs = heat.steps
    assert rs > 1
    assert list(trace.y) == list(range(rs // 2, n, rs))  # an axis that ends near n, not n/step
    assert list(trace.x) == list(range(cs // 2, d, cs))
    assert list(heat.data.index) == list(trace.y) and list(heat.data.columns) == list(trace.x)
    assert f"{n}×{d} values smoothed and drawn one in {rs}×{cs}" in heat.fig.layout.title.text
    assert trace.customdata[1][0].startswith(f"row {rs + rs // 2}, column {cs // 2}, smoothed")


def test_big_heatmaps_are_smoothed_not_strided_so_fast_waves_do_not_alias():
    """Every 7th row of dimension 0 (period 2π ≈ 6.28 positions) is a slow false wave of
    amplitude 1 (moiré); smoothed first, the fast wave fades to its local mean instead."""
    n, d = pos.LIMITS.max_length, pos.LIMITS.max_d_model
    pe = pos.sinusoidal(n, d)
    shown, (rs, cs) = pos.thin(pe)
    assert shown.shape[0] <= pos.LIMITS.max_rows and shown.shape[1] <= pos.LIMITS.max_cols
    assert rs >= 3 and np.abs(pe[::rs, 0]).max() > 0.99  # striding would draw a full-height wave
    assert np.abs(shown[:, 0]).max() < 0.3
    slow = pos.sinusoidal(n, 8)[:, -1:]  # a wave slower than the step passes unchanged
    np.testing.assert_allclose(pos.thin(slow, max_rows=300)[0][:, 0],
                               slow[pos.thin_index(n, rs), 0], atol=5e-3)
    flat = np.full((1000, 3000), 2.5)  # the mean is kept, edges included
    np.testing.assert_allclose(pos.thin(flat)[0], 2.5)
    small = pos.sinusoidal(10, 8)
    assert pos.thin(small)[1] == (1, 1) and pos.thin(small)[0] is small


def test_similarity_by_distance_plots_rounding_noise_as_zero():
    from lmdemo.plots import positional as plots

    v = pos.similarity_view("sinusoidal", "dot", 64, 16)
    assert 0 < v.stats.max_spread < 1e-9  # the raw spread is floating-point noise
    spread = plots.similarity_charts(v)[1].fig.data[1]
    assert not any(spread.y)
    assert plots.spread_value(v.stats) == 0.0  # the metric says 0 too
    only = pos.similarity_view("sine-only", "dot", 64, 16)
    assert plots.spread_value(only.stats) == only.stats.max_spread > 0.1  # real spread: kept


def test_learned_table_colours_are_not_squashed_by_position_0():
    from lmdemo.plots import positional as plots

    rng = np.random.default_rng(0)
    table = rng.normal(size=(64, 16))
    table[0] = 50.0  # one row far larger than the rest, as GPT-2's position 0
    trace = plots.heatmap_chart(table, "t", "t", robust=True).fig.data[0]
    assert trace.zmax == pytest.approx(np.percentile(table[1:], 99)) and trace.zmax < 5
    assert trace.zmin == pytest.approx(np.percentile(table[1:], 1))


def test_ablation_default_model_follows_the_rotary_model():
    from lmdemo.lab import position_ablation as abl

    assert abl.default_model() == (rotary.REAL_MODEL if rotary.real_model_ready()
                                   else abl.LIMITS.fallback_model)
    if pos.installed("tiny-gpt") or rotary.real_model_ready():
        assert abl.any_model_installed()
    assert not pos.installed("no-such-model")


def test_positional_chart_words_follow_the_language():
    import threading

    from lmdemo.plots import positional as plots
    from lmdemo.plots.common import set_language

    out = {}

    def draw():
        set_language("zh")
        out["charts"] = plots.similarity_charts(pos.similarity_view("sinusoidal", "dot", 9, 4))

    t = threading.Thread(target=draw)
    t.start()
    t.join()
    heat, diag = out["charts"]
    assert heat.fig.layout.title.text == "点积相似度，正弦编码"
    assert heat.fig.layout.xaxis.title.text == "位置" and diag.fig.data[0].name == "平均相似度"
    english = plots.similarity_charts(pos.similarity_view("sinusoidal", "dot", 9, 4))[0]
    assert english.fig.layout.title.text == "dot similarity, sinusoidal"  # this thread: English


def test_the_pca_path_is_not_squashed_by_an_outlying_position_0():
    import numpy as np

    from lmdemo.plots import positional as plots

    coords = np.random.default_rng(0).normal(size=(50, 2))
    coords[0] = [40.0, -30.0]  # as position 0 of a learned table often is
    fig = plots.pca_path(coords, np.array([0.5, 0.2]), "t")
    lo, hi = fig.layout.xaxis.range
    assert lo <= coords[1:, 0].min() and hi >= coords[1:, 0].max() and hi < 40
    assert "position 0 lies off the chart" in fig.layout.annotations[0].text
    coords[0] = [0.1, 0.1]  # within the rest: the axes fit everything, no note
    fig = plots.pca_path(coords, np.array([0.5, 0.2]), "t")
    assert fig.layout.xaxis.range is None and not fig.layout.annotations
