"""Home: what a language model is, and the tour of the pages."""

import streamlit as st

from pages import ui
from pages.catalog import PAGES

ui.page(ui.prose("home", "title"), "intro", "home")
st.subheader(ui.common("tour"))
for info in PAGES[1:]:
    ui.page_link(info)
st.markdown(ui.prose("home", "ideas"))
ui.share_hint()
