# keycourier: one image for web, worker, beat and the migration job (the command picks which).
# Build: docker build -t keycourier .   Run: docker run --env-file .env -p 8000:8000 keycourier

FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
# A virtualenv copied whole into the runtime stage: no compilers or pip caches come along.
RUN python -m venv /opt/keycourier \
    && /opt/keycourier/bin/pip install --no-cache-dir ".[sentry]"

FROM python:3.12-slim
ENV PATH=/opt/keycourier/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TEMPLATES_DIR=/app/templates \
    WORKER_HEARTBEAT_FILE=/tmp/keycourier-worker-heartbeat \
    PORT=8000
RUN groupadd --system --gid 10001 keycourier \
    && useradd --system --uid 10001 --gid keycourier --home-dir /app --shell /usr/sbin/nologin keycourier
WORKDIR /app
COPY --from=build /opt/keycourier /opt/keycourier
COPY templates ./templates
# var/ holds beat's schedule (and, in single-machine mode, the SQLite ledger): the only place
# the process writes besides /tmp.
RUN mkdir -p /app/var && chown keycourier:keycourier /app/var
USER 10001:10001
EXPOSE 8000
# The web process; workers run `keycourier worker`, beat `keycourier beat`, the release
# `keycourier migrate`. Proxy headers are trusted: only the router or ingress reaches it.
CMD ["keycourier", "serve", "--host", "0.0.0.0", "--forwarded-allow-ips", "*"]
