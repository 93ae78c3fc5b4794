# syntax=docker/dockerfile:1
# The Rollwise operator image.
#
# Stage "build" installs the operator's dependencies into a virtualenv exactly as locked (every
# file pinned by sha256 in requirements.lock, pip --require-hashes, nothing resolved at build
# time), builds the package's own wheel with the locked build backend (requirements-build.lock)
# and adds it; the final stage copies only that virtualenv onto a slim Python base and runs it
# as an unprivileged user. The chart (charts/rollwise) runs it with a read-only root filesystem
# and a writable /tmp. hack/lock-requirements.sh regenerates both locks.
#
# The base is pinned by tag and digest so that a rebuild uses the same bytes; the release
# pipeline's dependency updater moves both together (never the tag alone).
ARG PYTHON_IMAGE=python:3.11.10-slim-bookworm@sha256:5148c0e4bbb64271bca1d3322360ebf4bfb7564507ae32dd639322e4952a6b16

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (see .dockerignore): the locks and metadata first, then the
# package.
COPY requirements.lock requirements-build.lock pyproject.toml README.md ./
RUN python -m venv /opt/rollwise \
 && /opt/rollwise/bin/pip install --require-hashes --no-deps -r requirements.lock \
 && python -m pip install --require-hashes --no-deps -r requirements-build.lock
COPY operator/ operator/
RUN python -m pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
 && /opt/rollwise/bin/pip install --no-index --no-deps /wheels/rollwise-*.whl \
 && /opt/rollwise/bin/pip check \
 && /opt/rollwise/bin/pip uninstall --yes pip setuptools wheel

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="rollwise-operator" \
      org.opencontainers.image.description="Rollwise: progressive delivery for Kubernetes services and ML model releases" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.10-slim-bookworm"
# A named user with the uid/gid the chart's securityContext expects (65532), no home directory,
# no login shell: nothing at runtime needs either.
RUN groupadd --system --gid 65532 rollwise \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin rollwise
COPY --from=build /opt/rollwise /opt/rollwise
ENV PATH="/opt/rollwise/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROLLWISE_LOG_FORMAT=json
USER 65532:65532
WORKDIR /tmp
# 8080: kopf's liveness endpoint (/healthz); 9102: Prometheus metrics (/metrics).
EXPOSE 8080 9102
# rollwise-operator is the package's console script (rollwise.runtime.main:main). The default
# arguments serve the liveness endpoint; the chart passes its own (namespaces, ports).
ENTRYPOINT ["rollwise-operator"]
CMD ["--liveness=http://0.0.0.0:8080/healthz"]
