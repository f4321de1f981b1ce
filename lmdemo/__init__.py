"""lmdemo: see how language models work, and train one.

The package is the shared model layer behind the Streamlit pages, the Gradio app and the command
line. Importing it is cheap: torch, transformers, streamlit and gradio are imported lazily, inside
the functions that need them, so `import lmdemo` stays fast for the CLI and for app start-up.
"""

__version__ = "0.1.0"

from lmdemo.core.errors import UserError  # noqa: E402  (light: no heavy imports)

__all__ = ["UserError", "__version__"]
