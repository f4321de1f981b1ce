"""lmdemo's Streamlit app: the navigation over the pages listed in pages/catalog.py."""

import streamlit as st

from pages import ui
from pages.catalog import PAGES

st.set_page_config(page_title="lmdemo", page_icon=":material/psychology:", layout="wide")
nav = st.navigation([st.Page(p.file, title=ui.page_title(p), icon=p.icon, url_path=p.url_path,
                             default=(i == 0)) for i, p in enumerate(PAGES)])
nav.run()
