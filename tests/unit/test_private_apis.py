"""Private APIs of our dependencies that lmdemo relies on, one test each.

Each test fails when an upgrade breaks the assumption (the name is gone, its type or behaviour
changed); its comment says where we use it and what to change then. Pin the dependency or adapt the
caller before silencing one of these.
"""

from __future__ import annotations

import inspect

import pytest

from tests.helpers import ROOT


def test_streamlit_pages_manager_uses_pages_directory():
    """Used by pages/ui.py (`_leave_pages_folder_mode`): a first visit straight to a page's
    address, before app.py's st.navigation has run in the process, finds the class attribute
    True (a `pages/` folder exists) and sets it to False, which switches off the old-style
    pages-folder sidebar. If this fails, find how the running Streamlit decides "pages directory
    mode" (streamlit/runtime/pages_manager.py, scriptrunner/script_runner.py) and update that
    function, or pin streamlit to the last version that passes."""
    from streamlit.commands import navigation
    from streamlit.runtime import pages_manager
    from streamlit.runtime.pages_manager import PagesManager
    from streamlit.runtime.scriptrunner import script_runner

    assert "uses_pages_directory" in vars(PagesManager), "no longer a class attribute"
    saved = PagesManager.uses_pages_directory
    try:
        PagesManager.uses_pages_directory = None
        PagesManager(str(ROOT / "app.py"))  # the app's folder has pages/: the old mode is on
        assert PagesManager.uses_pages_directory is True
        PagesManager.uses_pages_directory = False  # what ui.py does
        PagesManager(str(ROOT / "app.py"))
        assert PagesManager.uses_pages_directory is False, "Streamlit turned the mode back on"
    finally:
        PagesManager.uses_pages_directory = saved
    # st.navigation turns the mode off the same way, and the script runner reads the flag
    assert "PagesManager.uses_pages_directory = False" in inspect.getsource(navigation.navigation)
    assert "uses_pages_directory" in inspect.getsource(script_runner)
    assert "uses_pages_directory" in inspect.getsource(pages_manager)


def test_accelerate_reset_state():
    """Used by lmdemo/training/finetune.py (`_accelerator`): one process may train twice with
    different precisions (a bench comparing bf16 with fp32, the tests), which Accelerate refuses
    unless its process-wide `AcceleratorState._shared_state` is reset with
    `AcceleratorState._reset_state(reset_partial_state=False)`. If this fails, look for the
    replacement in accelerate/state.py (`AcceleratorState`), update `_accelerator`, or run each
    training in its own process (the app's jobs already do)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    assert isinstance(AcceleratorState._shared_state, dict)
    params = inspect.signature(AcceleratorState._reset_state).parameters
    assert "reset_partial_state" in params
    Accelerator(cpu=True, mixed_precision="no")
    assert AcceleratorState._shared_state, "the shared state is no longer kept in that dict"
    with pytest.raises(ValueError, match="already been initialized"):
        Accelerator(cpu=True, mixed_precision="bf16")
    AcceleratorState._reset_state(reset_partial_state=False)
    assert AcceleratorState._shared_state == {}
    assert Accelerator(cpu=True, mixed_precision="bf16").mixed_precision == "bf16"
    AcceleratorState._reset_state(reset_partial_state=False)


def test_torch_fused_kernels_supported_devices():
    """Used by lmdemo/training/finetune.py (`_adamw_kernel`) to ask AdamW for its fused kernel
    where the device has one. If the import fails, `_adamw_kernel` quietly falls back to the
    default (slower, same result) AdamW; find the helper's new home in torch/utils/_foreach_utils.py
    or torch/optim/adamw.py and update the import."""
    import torch
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = _get_fused_kernels_supported_devices()
    assert isinstance(devices, (list, tuple)) and all(isinstance(d, str) for d in devices)
    assert {"cpu", "cuda"} <= set(devices)
    p = torch.nn.Parameter(torch.ones(3))
    p.grad = torch.ones(3)
    torch.optim.AdamW([p], lr=0.1, fused=True).step()  # the kernel it promises exists on CPU
    assert torch.all(p < 1)


def test_starlette_builds_the_middleware_stack_from_user_middleware():
    """Used by gradio_app.py (`_guard_first`): at startup SameOriginOnly is moved to the front of
    `app.user_middleware` and `app.middleware_stack` is set to None, so Starlette rebuilds the
    stack in that order on the next request (in front of Gradio's CORS layer, which would
    otherwise answer a foreign preflight). If this fails, find how the running Starlette builds
    its middleware stack and update `_guard_first`, or pin starlette."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.testclient import TestClient

    order = []

    def tagging(name):
        class Tag:
            def __init__(self, app):
                self.app = app

            async def __call__(self, scope, receive, send):
                order.append(name)
                await self.app(scope, receive, send)
        return Tag

    app = Starlette(middleware=[Middleware(tagging("a")), Middleware(tagging("b"))])
    assert isinstance(app.user_middleware, list) and app.middleware_stack is None
    TestClient(app).get("/")
    assert order == ["a", "b"]
    app.user_middleware[:] = app.user_middleware[::-1]
    app.middleware_stack = None
    order.clear()
    TestClient(app).get("/")
    assert order == ["b", "a"]
