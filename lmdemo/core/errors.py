"""The one exception type that carries a message meant for the user.

Services raise `UserError` (a ValueError) for bad input, unknown models or an unreachable hub, with
a message that says how to fix it. The Streamlit pages show it with `st.error`, the Gradio app
raises it as `gr.Error`, and the CLI prints it and exits with status 2 — never a traceback.
"""


class UserError(ValueError):
    """Bad input or an unavailable resource, explained in words a user can act on."""
