# keycourier: one image for web, worker, beat and the migration job (the command picks which).
# Build: docker build -t keycourier .
# Run:   docker run --env-file .env -p 8000:8000 -v keycourier-var:/app/var keycourier

# Python's version: the same as .python-version (Heroku) and one the lock was resolved for.
FROM python:3.12-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
# A virtualenv copied whole into the runtime stage: no compilers or pip caches come along.
RUN python -m venv /opt/keycourier
# The dependencies first, in a layer of their own: exactly the versions of the lock, each
# checked against its hash (scripts/lock writes it). Only a change of the lock rebuilds this.
COPY requirements.lock ./
RUN /opt/keycourier/bin/pip install --no-cache-dir --require-hashes -r requirements.lock
# Then keycourier itself, without resolving anything again: a code change rebuilds from here.
COPY pyproject.toml README.md ./
COPY app ./app
COPY workers ./workers
RUN /opt/keycourier/bin/pip install --no-cache-dir --no-deps .

FROM python:3.12-slim
# FORWARDED_ALLOW_IPS: the proxies whose X-Forwarded-* headers the web process trusts. Only
# itself by default, since `docker run -p` exposes the port directly; behind a proxy or an
# ingress, set it to the proxy's address (or '*' when nothing else can reach the container).
ENV PATH=/opt/keycourier/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TEMPLATES_DIR=/app/templates \
    WORKER_HEARTBEAT_FILE=/tmp/keycourier-worker-heartbeat \
    PORT=8000 \
    FORWARDED_ALLOW_IPS=127.0.0.1
RUN groupadd --system --gid 10001 keycourier \
    && useradd --system --uid 10001 --gid keycourier --home-dir /app --shell /usr/sbin/nologin keycourier
WORKDIR /app
COPY --from=build /opt/keycourier /opt/keycourier
COPY templates ./templates
# var/ holds beat's schedule and, in single-machine mode, the SQLite ledger and the embedded
# broker: the only place the process writes besides /tmp. Mount a volume there to keep them.
RUN mkdir -p /app/var && chown keycourier:keycourier /app/var
USER 10001:10001
EXPOSE 8000
# The web process; workers run `keycourier worker`, beat `keycourier beat`, the release
# `keycourier migrate`. `exec` leaves keycourier as PID 1, so it receives SIGTERM itself.
CMD ["sh", "-c", "exec keycourier serve --host 0.0.0.0 --forwarded-allow-ips \"$FORWARDED_ALLOW_IPS\""]
