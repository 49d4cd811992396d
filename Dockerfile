# syntax=docker/dockerfile:1.7
# segnas image: CPU by default; the quickstart (synthetic data, no download) is the default command.
#   docker build -t segnas .                                   # CPU, python:3.11-slim-bookworm
#   docker build --build-arg BASE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04 -t segnas:cuda .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t segnas .
#   docker run --rm -v "$PWD/out:/app/report" segnas           # runs the quickstart
# Dependencies are installed in their own layers (torch first, then pyproject's dependencies),
# so editing the code rebuilds only the last layers; the pip cache mount keeps wheels between
# builds. See docs/pipeline.md ("Container").
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG TORCH_INDEX_URL=https://pypi.org/simple
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# CUDA base images ship without Python: install it only when it is missing.
# hadolint ignore=DL3008
RUN if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv "$VIRTUAL_ENV" \
    && useradd --create-home --uid 1000 --shell /bin/bash segnas

# Layer 1: torch (the big one), from a configurable wheel index.
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url "$TORCH_INDEX_URL" --extra-index-url https://pypi.org/simple \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"

# Layer 2: the project's dependencies, read from pyproject.toml alone (no code yet).
WORKDIR /app
COPY pyproject.toml ./
RUN --mount=type=cache,target=/root/.cache/pip \
    python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb'))['project']; \
print('\n'.join(p['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# Layer 3: the code (small, rebuilt on every change).
COPY --chown=segnas:segnas . /app
RUN pip install --no-cache-dir --no-deps -e . \
    && chown segnas:segnas /app

USER 1000:1000
ENV HOME=/home/segnas
CMD ["snakemake", "--profile", "workflow/profiles/local"]
