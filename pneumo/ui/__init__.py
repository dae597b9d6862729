"""The Streamlit page, in parts: `streamlit_app.py` (the entry point) draws the sidebar
(`sidebar`), then the three sections, `analyze`, `curves` and `model_info`. `resources` holds what
is loaded once per server process; `session` the per-browser-session results, typed."""
