# The Hugging Face Space (Docker SDK) and any container host: the app on the shipped weights.
#   docker build -t pneumo . && docker run -p 8501:8501 pneumo    ->  http://localhost:8501
FROM python:3.11-slim

# Spaces run the container as uid 1000; the app writes nothing but caches under its HOME.
RUN useradd --create-home --uid 1000 user
WORKDIR /home/user/app

COPY --chown=user requirements.txt .
# Every DICOM decoder in it is permissively licensed: imagecodecs, not the GPL libjpeg (docs/DICOM.md).
RUN pip install --no-cache-dir -r requirements.txt

# Only what the app needs (.dockerignore keeps lab/, tests/, docs and caches out).
COPY --chown=user .streamlit ./.streamlit
COPY --chown=user streamlit_app.py ./
COPY --chown=user pneumo ./pneumo
COPY --chown=user weights ./weights
COPY --chown=user examples ./examples

USER user
ENV HOME=/home/user \
    PYTHONUNBUFFERED=1 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
# A Space shows the app in an iframe of huggingface.co, another site: the browser withholds
# Streamlit's XSRF cookie there and every upload fails with 403. Off in the container only;
# `make run` keeps Streamlit's default (on).
ENV STREAMLIT_SERVER_ENABLE_XSRF_PROTECTION=false

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"
CMD ["streamlit", "run", "streamlit_app.py", "--server.port", "8501", "--server.address", "0.0.0.0"]
