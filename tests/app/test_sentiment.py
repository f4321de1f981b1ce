"""The Sentiment page in AppTest: every tab draws (only the open one computes), bad input shows
st.error (not an exception), a fine-tuning run can be started (and bad hyperparameters start
nothing), jobs are listed, runs are averaged into a soup."""

import pytest

from lmdemo.training import jobs
from tests import helpers
from tests.helpers import TINY_ID, app_test, train_tiny_run

PAGE = "pages/sentiment.py"


@pytest.fixture(scope="module")
def tiny_run(tiny_env_module):
    train_tiny_run("tiny", method="full", epochs=1)
    return "run:tiny"


def page(model: str, tab: str | None = None):
    at = app_test(PAGE, timeout=120)
    at.query_params["model"] = model
    if tab:
        at.query_params["tab"] = tab
    return at.run()


@pytest.fixture
def app(tiny_run):
    return page(tiny_run)


@pytest.fixture
def tune(tiny_run):
    return page(tiny_run, "Fine-tune")


def _errors(at):
    return [e.value for e in at.error]


def test_page_draws_every_tab(app, tiny_run):
    assert not app.exception, app.exception
    assert [t.label for t in app.tabs] == ["Query", "Fine-tune", "Jobs", "Evaluate & compare"]
    assert app.text_area(key="review").value
    assert app.radio(key="attr").options == ["integrated-gradients", "gradient-x-input"]
    assert any(m.label == "Label" for m in app.metric)
    assert not any(b.label == "Start fine-tuning" for b in app.button)  # a closed tab: not run
    assert not _errors(app) and not app.warning
    tune = page(tiny_run, "Fine-tune")
    assert any(b.label == "Start fine-tuning" for b in tune.button) and not tune.metric
    assert tune.number_input(key="ft_lr").value == pytest.approx(5e-4)
    full = app_test(PAGE, timeout=120)
    # a radio with format_func keeps its label in the URL: ?ft_method=Full
    full.query_params.update({"model": tiny_run, "tab": "Fine-tune", "ft_method": "Full"})
    assert full.run().number_input(key="ft_lr").value == pytest.approx(5e-5)  # full's default
    for tab in ("Jobs", "Evaluate & compare"):
        at = page(tiny_run, tab)
        assert not at.exception and not _errors(at) and not at.warning, tab
    assert page(tiny_run, "Evaluate & compare").metric[0].label == "accuracy"


def test_empty_review_is_an_error_not_an_exception(app):
    app.text_area(key="review").set_value("   ").run()
    assert not app.exception
    assert any("empty" in e for e in _errors(app))


def test_bf16_box_is_unticked_without_a_gpu(tiny_run, monkeypatch):
    """Without a GPU the bf16 box is unticked and disabled, says why, and a shared link from a
    GPU server that ticked it (?ft_bf16=true) does not tick it here."""
    import dataclasses

    from lmdemo.training import sentiment as svc

    real = svc.train_form
    monkeypatch.setattr(svc, "train_form", lambda: dataclasses.replace(real(), cuda=False))
    at = app_test(PAGE, timeout=120)
    at.query_params.update({"model": tiny_run, "tab": "Fine-tune", "ft_bf16": "true"})
    box = at.run().checkbox(key="ft_bf16_cpu")
    assert box.disabled and box.value is False
    assert "CUDA GPU" in box.help and "CPU" in box.help


def test_the_duration_is_estimated_before_the_start(tune):
    """The default form (minilm, LoRA, the shipped reviews) gets an estimate before anything
    starts, said to be one, with what it is worked out from."""
    shown = [i.value for i in tune.info if "Estimated duration" in i.value]
    assert len(shown) == 1, [i.value for i in tune.info]
    assert "This is an estimate" in shown[0] and "2,158 reviews × 3 epochs" in shown[0]
    assert "typical for this model" in shown[0]
    tune.number_input(key="ft_epochs").set_value(1).run()
    assert any("2,158 reviews × 1 epochs" in i.value for i in tune.info)


def test_a_long_review_says_how_much_was_read(tiny_run):
    at = app_test(PAGE, timeout=120)
    at.query_params.update({"model": tiny_run, "attr": "gradient-x-input",
                            "review": "A warm and funny film with a great cast. " * 30})
    at.run()
    assert not at.exception and not _errors(at)
    warning = next(w.value for w in at.warning if "Only the beginning" in w.value)
    assert "the first 128 of its" in warning and "at most 128" in warning
    assert any("read 128 of the review's" in c.value for c in at.caption)
    assert next(m for m in at.metric if m.label == "Label").value in ("negative", "positive")


def test_the_tab_is_kept_in_the_url(tiny_run):
    """?tab= opens that tab (only it computes), in either language, as on the other pages."""
    for tab, lang in (("Jobs", "en"), ("Evaluate & compare", "zh"), ("Fine-tune", "zh")):
        at = app_test(PAGE, timeout=120)
        at.query_params.update({"model": tiny_run, "tab": tab, "lang": lang})
        at.run()
        assert not at.exception and not _errors(at), tab
        assert at.query_params["tab"] == [tab] or at.query_params["tab"] == tab
        assert not any(m.label in ("Label", "标签") for m in at.metric), tab  # Query not run
    assert at.button and any(b.label == "开始微调" for b in at.button)


def test_the_jobs_tab_shows_no_server_path_or_pid(tiny_run, monkeypatch):
    """A failed run's error is shown without the server's folders; its log only with the
    training token when the server has one."""
    folder = jobs.create_run("broken", {"base": "minilm", "method": "lora"})
    jobs.update_status(folder, state="failed", pid=4242, error=f"OSError: no space in {folder}")
    (folder / "log.txt").write_text(f'File "{folder}/x.py"\nboom\n')
    try:
        at = app_test(PAGE, timeout=120)
        at.query_params.update({"model": tiny_run, "tab": "Jobs"})
        at.session_state["job_run"] = "broken"
        at.run()
        assert not at.exception
        error = next(w.value for w in at.warning if "no space" in w.value)
        assert str(folder) not in error and "…/broken" in error
        assert any('File "…/x.py"' in c.value for c in at.code)
        assert all(str(folder) not in c.value and "4242" not in c.value for c in at.code)
        monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
        at.run()
        assert not any("boom" in c.value for c in at.code)  # the log needs the token now
        at.text_input(key="jobs_token").set_value("s3cret").run()
        assert any("boom" in c.value for c in at.code)
    finally:
        import shutil

        shutil.rmtree(folder)


def test_bad_learning_rate_starts_nothing(tune):
    app = tune
    app.number_input(key="ft_lr").set_value(0.0).run()
    next(b for b in app.button if b.label == "Start fine-tuning").click().run()
    assert not app.exception
    assert any("Learning rate" in e for e in _errors(app))
    assert jobs.list_runs(refresh=False)[0].name == "tiny"  # only the fixture's run


def test_start_a_run_and_see_it_in_jobs(tune, tiny_run):
    app = tune
    app.selectbox(key="ft_base").set_value("other hub encoder…").run()
    app.text_input(key="ft_base_hub").set_value(TINY_ID).run()
    app.text_input(key="ft_name").set_value("from-page").run()
    next(b for b in app.button if b.label == "Start fine-tuning").click().run()
    assert not app.exception and not _errors(app), _errors(app)
    assert any("from-page" in s.value for s in app.success)
    run = jobs.get_run("from-page")
    assert run.config["base"] == TINY_ID and run.state in ("running", "done", "queued")
    app.run()
    assert not app.exception
    at = page(tiny_run, "Jobs")
    assert not at.exception and not _errors(at)
    assert "from-page" in at.selectbox(key="job_run").options
    jobs.cancel("from-page") if jobs.get_run("from-page").state == "running" else None


def test_training_token_is_asked_for_when_set(tiny_run, monkeypatch):
    monkeypatch.setenv("LMDEMO_TRAIN_TOKEN", "s3cret")
    at = page(tiny_run, "Fine-tune")
    field = at.text_input(key="ft_token")
    assert field is not None
    at.text_input(key="ft_name").set_value("needs-token").run()
    field.set_value("wrong").run()
    next(b for b in at.button if b.label == "Start fine-tuning").click().run()
    assert not at.exception
    assert any("token" in e for e in _errors(at))
    assert "needs-token" not in [r.name for r in jobs.list_runs(refresh=False)]


def test_imdb_is_offered_only_when_the_dataset_can_be_loaded(tiny_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LMDEMO_HUB_MIRROR", str(tmp_path))  # a mirror without the dataset
    at = page(tiny_run, "Fine-tune")
    before = list(at.radio(key="ft_data").options)
    assert not any("IMDB" in o for o in before)
    helpers.make_imdb_mirror(tmp_path)
    at.run()
    assert not at.exception
    options = list(at.radio(key="ft_data").options)
    assert len(options) == len(before) + 1 and "IMDB" in options[-1]


def test_soup_of_two_runs_from_the_page(tiny_run):
    for name, seed in (("soup-x", 0), ("soup-y", 1)):
        train_tiny_run(name, method="lora", epochs=1, seed=seed)
    at = page(tiny_run, "Evaluate & compare")
    assert set(at.multiselect(key="soup_runs").options) >= {"soup-x", "soup-y"}
    assert "tiny" not in at.multiselect(key="soup_runs").options  # a full fine-tuning run
    at.multiselect(key="soup_runs").set_value(["soup-x", "soup-y"]).run()
    at.text_input(key="soup_name").set_value("soup-xy").run()
    next(b for b in at.button if b.label == "Make the soup").click().run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any("soup-xy" in s.value for s in at.success)
    assert jobs.get_run("soup-xy").state == "done"
    assert "run:soup-xy" in at.selectbox(key="model").options  # the page reran: the picker knows it
    next(b for b in at.button if b.label == "Make the soup").click().run()  # same name again
    assert not at.exception and any("already exists" in e for e in _errors(at))


def test_a_review_the_vocabulary_cannot_read_gets_a_warning_not_a_label(tiny_run):
    at = app_test(PAGE, timeout=120)
    at.query_params.update({"model": tiny_run, "review": "这部电影真好看，演员的表演非常精彩。"})
    at.run()
    assert not at.exception and not _errors(at)
    assert any("[UNK]" in w.value for w in at.warning), [w.value for w in at.warning]
    assert next(m for m in at.metric if m.label == "Label").value == "can't tell"
    english = page(tiny_run)  # the default English review: a label, no warning
    assert not english.warning
    assert next(m for m in english.metric if m.label == "Label").value in ("negative", "positive")
