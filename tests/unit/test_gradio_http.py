"""One real HTTP round trip: the Gradio app served on a free loopback port, called with
`gradio_client` exactly as the README shows, then shut down.

The server runs in this process (`launch(prevent_thread_lock=True)`) on 127.0.0.1 only; models are
tiny random ones from a local hub mirror plus the embedded `minilm`. Nothing reaches the internet.
"""

from __future__ import annotations

import socket

import pytest

from tests.helpers import CLS, LM, reference_distribution

pytestmark = pytest.mark.slow
FRIEND = "https://friend.example"  # an origin the operator allows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_mirror):
    mp = pytest.MonkeyPatch()
    mp.setenv("LMDEMO_HUB_MIRROR", str(tiny_mirror))
    mp.setenv("LMDEMO_HOME", str(tmp_path_factory.mktemp("http-home")))
    mp.setenv("HF_HUB_OFFLINE", "1")
    mp.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio_app

    port = free_port()
    settings = gradio_app.GradioSettings("127.0.0.1", port, 2, 16,
                                         allowed_origins=(FRIEND,))  # LMDEMO_GRADIO_ORIGINS
    demo = gradio_app.build(settings)
    gradio_app.launch(demo, settings, prevent_thread_lock=True, quiet=True)  # as main() does
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        demo.close()
        mp.undo()


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client

    return Client(server, verbose=False)


def test_next_token_over_http(client, tiny_mirror):
    data = client.predict("The cat sat", LM, 4, 0.0, api_name="/next_token")
    assert data["model"] == LM and len(data["entries"]) == 4
    p, _ = reference_distribution(tiny_mirror / LM, "The cat sat")  # computed here, not served
    order = sorted(range(len(p)), key=lambda i: (-p[i], i))[:4]
    assert [e["id"] for e in data["entries"]] == order
    assert [e["prob"] for e in data["entries"]] == pytest.approx([p[i] for i in order], abs=1e-5)
    assert [e["sampling_prob"] for e in data["entries"]] == [1.0, 0, 0, 0]  # temperature 0


def test_score_attention_classify_over_http(client):
    ranked = client.predict(["The cat sat.", "sat The cat."], LM, api_name="/score")
    assert len(ranked["sentences"]) == 2
    assert ranked["sentences"][0]["total_log_prob"] >= ranked["sentences"][1]["total_log_prob"]
    att = client.predict("The movie was good", "minilm", 1, 2, api_name="/attention")
    assert att["layers"] == [1] and att["heads"] == [2] and att["tokens"][0] == "[CLS]"
    preds = client.predict("a good film\na bad film", CLS, api_name="/classify")
    assert len(preds) == 2 and set(preds[0]["probs"]) == {"negative", "positive"}


def test_bad_input_comes_back_as_the_message(client):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="temperature must be between 0 and 100"):
        client.predict("The cat", LM, 4, -2.0, api_name="/next_token")
    with pytest.raises(AppError, match="layer must be a whole number from 0 to 5"):
        client.predict("The movie", "minilm", 40, None, api_name="/attention")


# ----------------------------------------------------------------------------- inside the model
# The mirror's GPT-2 reads one token per character after its start token (2 layers x 4 heads).

def test_lens_over_http(client, tiny_mirror):
    data = client.predict("abcab", LM, "c", api_name="/lens")
    p, tok = reference_distribution(tiny_mirror / LM, "abcab")  # computed here, not served
    assert data["depths"] == ["embedding", "layer 1", "layer 2"] and len(data["tokens"]) == 6
    last = data["top"][-1][-1]  # the model's own prediction after the whole text
    assert last["id"] == int(p.argmax()) and last["prob"] == pytest.approx(float(p.max()), abs=1e-5)
    pin = tok("c", add_special_tokens=False)["input_ids"][0]
    assert data["pin"]["probs"][-1] == pytest.approx(float(p[pin]), abs=1e-5)


def test_heads_over_http(client):
    from lmdemo.lab.head_ablation import importance

    data = client.predict("abcabca", LM, "b", "1.3, 0.0", "zero", 3, api_name="/heads")
    want = importance(LM, "abcabca", "b")  # the service called in this process
    assert data["importance"] == [pytest.approx(row, abs=1e-6) for row in want.importance]
    assert data["ablation"]["heads"] == [[0, 0], [1, 3]] and len(data["ablation"]["after"]) == 3
    assert client.predict("abcabca", LM, "b", api_name="/heads")["ablation"] is None


def test_patch_over_http(client, tiny_mirror):
    clean, _ = reference_distribution(tiny_mirror / LM, "abcd")
    corrupt, tok = reference_distribution(tiny_mirror / LM, "abxd")
    shift = (clean - corrupt)[1:]  # the answers: the characters the change moves most
    good, bad = tok.decode([int(shift.argmax()) + 1]), tok.decode([int(shift.argmin()) + 1])
    data = client.predict("abcd", "abxd", LM, good, bad, api_name="/patch")
    assert data["tokens"][3] == "c" and data["corrupt_tokens"][3] == "x"
    assert (data["clean_answer"]["token"], data["corrupt_answer"]["token"]) == (good, bad)
    # patching the one differing token's embedding output is the clean run: all recovered;
    # before it the two runs are the same, so nothing is
    assert data["recovered"][0][3] == pytest.approx(1, abs=1e-3)
    assert data["recovered"][0][:3] == pytest.approx([0, 0, 0], abs=1e-6)


def test_induction_over_http(client):
    data = client.predict(LM, 10, 2, api_name="/induction")
    ids = data["token_ids"]
    assert len(ids) == 21 and ids[1:11] == ids[11:] and len(data["losses"]) == 20
    assert data["loss_first"] == pytest.approx(sum(data["losses"][:10]) / 10)
    assert len(data["scores"]) == 2 and len(data["scores"][0]) == 4


@pytest.mark.parametrize(("args", "api_name", "words"), [
    (("abc", LM, "abc"), "/lens", "must be exactly one token"),
    (("abc", LM, "a", "7.0"), "/heads", "There is no head 7.0"),
    (("abcd", "abxde", LM), "/patch", "they must be the same length"),
    ((LM, 1, 0), "/induction", "length must be a whole number from 2 to 200"),
])
def test_inside_bad_input_comes_back_as_the_message(client, args, api_name, words):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=words):
        client.predict(*args, api_name=api_name)


@pytest.mark.parametrize(("host", "origin", "status"), [
    (None, None, 200),  # gradio_client, curl: no Origin
    (None, "same", 200),  # the app's own page
    (None, "https://evil.example", 403),
    (None, "null", 403),  # a sandboxed frame or a local file
    ("myspace.hf.space", "https://myspace.hf.space", 200),  # a public host, its own page
    ("myspace.hf.space", "https://evil.example", 403),  # ... and another site
    ("myspace.hf.space", "https://myspace.hf.space.evil.example", 403),
    ("myspace.hf.space", FRIEND, 200),  # an allowed origin
])
def test_cross_origin_calls_are_refused(server, host, origin, status):
    """A POST to /gradio_api/call/<name> from another site's page is refused (403) before any
    endpoint runs, whatever the host name the server answers to."""
    import httpx

    headers = {}
    if host:
        headers["Host"] = host
    if origin:
        headers["Origin"] = server if origin == "same" else origin
    r = httpx.post(f"{server}/gradio_api/call/positional", json={"data": ["sinusoidal", 4, 4]},
                   headers=headers, timeout=30)
    assert r.status_code == status, r.text
    if status == 403:
        assert "Cross-origin requests are refused" in r.text
    else:
        assert "event_id" in r.json()


@pytest.mark.parametrize(("host", "origin", "allowed"), [
    ("myspace.hf.space", "https://evil.example", False),  # Gradio itself would allow this one
    ("myspace.hf.space", "null", False),
    (None, "https://evil.example", False),
    ("myspace.hf.space", "https://myspace.hf.space", True),  # the app's own page
    ("myspace.hf.space", FRIEND, True),  # an origin the operator allows
    (None, "same", True),
])
def test_a_cross_site_preflight_is_refused_too(server, host, origin, allowed):
    """A browser asks first (OPTIONS with Access-Control-Request-Method) before a cross-site POST.
    Gradio's CORS layer answers that preflight itself, for any origin under a public host name;
    the guard now stands in front of it: a foreign origin gets 403 and no Access-Control-Allow-
    Origin, while the app's own page and allowed origins get their allow headers."""
    import httpx

    headers = {"Origin": server if origin == "same" else origin,
               "Access-Control-Request-Method": "POST",
               "Access-Control-Request-Headers": "content-type"}
    if host:
        headers["Host"] = host
    pre = httpx.options(f"{server}/gradio_api/call/finetune_launch", headers=headers, timeout=30)
    if allowed:
        assert pre.status_code == 200, pre.text
        assert pre.headers["access-control-allow-origin"] == headers["Origin"]
    else:
        assert pre.status_code == 403, (pre.status_code, dict(pre.headers))
        assert "access-control-allow-origin" not in pre.headers
        assert "Cross-origin requests are refused" in pre.text
        post = httpx.post(f"{server}/gradio_api/call/finetune_launch", json={"data": ["x"]},
                          headers={k: v for k, v in headers.items() if k in ("Host", "Origin")},
                          timeout=30)
        assert post.status_code == 403
