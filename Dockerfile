# One image for every ledger process; docker-compose.yml picks the subcommand (init, api, projector).
# Two stages so pip, its caches and the source tree stay out of the shipped image.
# Base images are pinned by the digest of their multi-architecture index: a re-pushed tag changes
# nothing here until the digest is updated on purpose (docs/security.md, Supply chain).
FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Every dependency, and the build backend, from the lock with hash checking: nothing is resolved
# at build time, and the `embedded` and `dev` extras are not in the lock.
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --only-binary :all: -r requirements.lock
COPY pyproject.toml README.md ./
COPY services/ services/
COPY schemas/ schemas/
COPY projections/ projections/
RUN pip install --no-cache-dir --no-deps --no-build-isolation .


FROM python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# LEDGER_HOST: the settings default to 127.0.0.1, which nothing outside the container can reach.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/venv/bin:$PATH \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000

RUN groupadd --system --gid 10001 ledger \
 && useradd --system --uid 10001 --gid ledger --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin ledger

COPY --from=build /opt/venv /opt/venv
# Mount points of the secrets volumes (all secrets; the writer keys alone, for the projector):
# a new named volume takes this owner, so init can write it.
RUN mkdir -p /run/ledger && chown 10001:10001 /run/ledger && chmod 700 /run/ledger \
 && mkdir -p /run/ledger-writer && chown 10001:10001 /run/ledger-writer \
 && chmod 700 /run/ledger-writer

WORKDIR /app
USER 10001:10001

EXPOSE 8000
# No HEALTHCHECK here: the projector runs this image too and serves no HTTP; compose sets the
# api's healthcheck.
CMD ["consent-ledger", "api"]
