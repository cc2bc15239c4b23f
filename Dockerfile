# syntax=docker/dockerfile:1
# AI Chat Gateway: one image, the API and the web app on one port.
#   docker build -t ai-chat-gateway .
#   docker run -p 8000:8000 -v acgw-data:/data ai-chat-gateway
# Multi-arch friendly: only official base images and locked PyPI/npm packages (amd64 and arm64 wheels).

# ── The SPA ────────────────────────────────────────────────────────────────────────────────────
FROM node:20-bookworm-slim AS spa
WORKDIR /src/frontend
COPY frontend/package.json frontend/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY frontend/ ./
# Vite writes to ../backend/app/frontend
RUN mkdir -p /src/backend/app && npm run build

# ── Python dependencies: exactly backend/uv.lock (hash-checked), in a venv the final stage copies ──
FROM python:3.11-slim-bookworm AS deps
WORKDIR /src/backend
COPY backend/bootstrap/requirements-uv.txt bootstrap/requirements-uv.txt
RUN pip install --no-cache-dir --require-hashes -r bootstrap/requirements-uv.txt
COPY backend/pyproject.toml backend/uv.lock ./
RUN UV_PROJECT_ENVIRONMENT=/opt/venv UV_PYTHON_DOWNLOADS=never UV_COMPILE_BYTECODE=1 \
    uv sync --locked --no-dev --no-cache

# ── The runtime: no compilers, no npm, a non-root user ──────────────────────────────────────────
# Without SECRET_KEY / ENCRYPTION_KEYS the app generates them once into /data (mode 0600); with
# ENVIRONMENT=production (as the compose file sets) they are required.
FROM python:3.11-slim-bookworm
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    DATA_DIR=/data \
    SHUTDOWN_DELAY_SECONDS=2 \
    SHUTDOWN_GRACE_SECONDS=20
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --shell /usr/sbin/nologin app \
 && mkdir -p /data \
 && chown app:app /data
COPY --from=deps /opt/venv /opt/venv
WORKDIR /app/backend
COPY --chown=app:app backend/alembic.ini ./
COPY --chown=app:app backend/migrations ./migrations
COPY --chown=app:app backend/app ./app
COPY --from=spa --chown=app:app /src/backend/app/frontend ./app/frontend
# Compiled once here: the process may not write bytecode (PYTHONDONTWRITEBYTECODE, a read-only user).
RUN python -m compileall -q app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8000
# SIGTERM: readiness turns 503, then running streams get SHUTDOWN_GRACE_SECONDS to finish
# (stop the container with a longer timeout than that: docker stop -t 40).
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/readyz', timeout=4).status == 200 else 1)"]
CMD ["python", "-m", "app", "serve"]
