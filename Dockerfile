# syntax=docker/dockerfile:1.7
# segnas image: the locked environment (requirements.lock: CPython 3.11, x86-64 Linux, PyPI's
# torch, which bundles CUDA 13 and runs on the CPU or an NVIDIA GPU); the quickstart (synthetic
# data, no download) is the default command.
#   docker build -t segnas .                                   # python:3.11-slim-bookworm
#   docker build --build-arg LOCK=requirements-cpu.lock -t segnas:cpu .  # another lock
#   docker run --rm -v "$PWD/out:/app/report" segnas           # runs the quickstart
# The locked packages are one layer, rebuilt only when the lock changes, so editing the code
# rebuilds only the last layer; the pip cache mount keeps wheels between builds. See
# docs/pipeline.md ("Lock file", "Container").
ARG BASE=python:3.11-slim-bookworm
FROM ${BASE}

ARG LOCK=requirements.lock

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# Bases without Python get the distribution's (the lock needs Python 3.11: Debian bookworm's).
# hadolint ignore=DL3008
RUN if ! python3 -m venv --help >/dev/null 2>&1; then \
        apt-get update \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
            python3 python3-venv ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
    && python3 -m venv "$VIRTUAL_ENV" \
    && useradd --create-home --uid 1000 --shell /bin/bash segnas

# Layer 1: the locked environment, exactly as `make install` installs it (no code yet).
WORKDIR /app
COPY ${LOCK} ./${LOCK}
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --require-hashes --no-deps -r "${LOCK}"

# Layer 2: the code (small, rebuilt on every change); the stamp names the lock installed.
COPY --chown=segnas:segnas . /app
RUN pip install --no-cache-dir --no-deps --no-build-isolation -e . \
    && echo "${LOCK}" > "$VIRTUAL_ENV/.segnas-installed" \
    && chown segnas:segnas /app

USER 1000:1000
ENV HOME=/home/segnas
CMD ["snakemake", "--profile", "workflow/profiles/local"]
