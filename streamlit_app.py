"""pneumo's page: `streamlit run streamlit_app.py` (the Hugging Face Space runs this too).
The page itself is pneumo/app.py; installed, `pneumo app` starts it.

Research and education demo, not a medical device.
"""

from pneumo.app import render

render()
