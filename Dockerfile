# One image for every stage: `coldchain ingest|rules|web|simulate|db migrate|devices provision`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir -r requirements.lock
COPY coldchain ./coldchain
COPY ingest ./ingest
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY simulator ./simulator
COPY db ./db
COPY api ./api
COPY traceability ./traceability
COPY security ./security
COPY reports ./reports
COPY services ./services
COPY launcher ./launcher
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 coldchain
# The eclipse-mosquitto image's broker account (uid and gid 1883): docker-compose.yml runs
# `coldchain devices provision` as it, so the owner-only password file and ACL it writes into
# /mosquitto/auth (a volume that starts as a copy of this folder) are the broker's own.
RUN groupadd --system --gid 1883 mosquitto \
    && useradd --system --uid 1883 --gid 1883 --no-create-home --shell /usr/sbin/nologin mosquitto \
    && install -d -o mosquitto -g mosquitto -m 0700 /mosquitto/auth
USER coldchain

ENTRYPOINT ["coldchain"]
CMD ["--help"]
