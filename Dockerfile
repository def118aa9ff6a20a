# ratzoo's live demo: the Streamlit app on the bundled checkpoints, CPU only.
#
#   docker build -t ratzoo-demo .
#   docker run --rm -p 8501:8501 ratzoo-demo        # then open http://localhost:8501
#
# Also a Hugging Face Docker Space as is (README front matter `sdk: docker`, `app_port: 8501`):
# it runs as the non-root user of uid 1000 that Spaces expect.
#
# The install steps are the README's / Makefile's, in the same order and with the same
# pins, so the path that `make test` exercises is the path this image takes:
#   python -m venv .venv; pip install --upgrade pip; pip install torch==2.13.0; pip install -e ".[demo]"
# with ONE difference: torch comes from PyTorch's CPU wheel index (--index-url .../whl/cpu),
# which keeps the multi-GB CUDA libraries out of the image. tests/test_dockerfile.py lints this
# file with hadolint and checks those steps against the Makefile; no image has been built here.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/user

RUN useradd --create-home --uid 1000 --shell /bin/bash user
USER 1000
WORKDIR /home/user/app

# 1. torch first, pinned, from the CPU index (its own layer: it changes least and weighs most).
RUN python -m venv .venv \
 && .venv/bin/pip install --upgrade pip \
 && .venv/bin/pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# 2. The project, then its demo extra, editable as in the README (pip keeps the torch above:
#    2.13.0+cpu satisfies the project's torch requirement). Only what the demo needs is copied.
COPY --chown=1000 pyproject.toml README.md ./
COPY --chown=1000 ratzoo ratzoo
COPY --chown=1000 train train
COPY --chown=1000 app app
COPY --chown=1000 .streamlit .streamlit
RUN .venv/bin/pip install -e ".[demo]"

# 3. The bundled zoo (weights, configs, cards, results): last, so retraining a model does
#    not invalidate the install layers.
COPY --chown=1000 checkpoints checkpoints

ENV PATH=/home/user/app/.venv/bin:$PATH \
    RATZOO_CACHE=/home/user/.cache/ratzoo

EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; r = urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4); sys.exit(0 if r.read().strip() == b'ok' else 1)"]

CMD ["streamlit", "run", "app/streamlit_app.py", \
     "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", \
     "--server.fileWatcherType=none", "--browser.gatherUsageStats=false"]
