# One image for every stage of the platform: `coldchain ingest|rules|web|simulate|db migrate`.
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
RUN pip install --no-cache-dir --no-deps . && useradd --system --uid 10001 coldchain
USER coldchain

ENTRYPOINT ["coldchain"]
CMD ["--help"]
