"""One settings object for every stage, read from ``COLDCHAIN_…`` environment variables.

Nested sections use a double underscore: ``COLDCHAIN_DB__PORT=55432``,
``COLDCHAIN_MQTT__HOST=broker.example``. A ``.env`` file in the working directory is read too.
The object is built once in the entry point (:func:`launcher.cli`) and passed into
constructors; nothing imports a global instance.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class DbSettings(BaseModel):
    """PostgreSQL/TimescaleDB connection."""

    host: str = "127.0.0.1"
    port: int = 55432
    name: str = "coldchain"
    user: str = "coldchain"
    password: SecretStr = SecretStr("coldchain")
    pool_min: int = Field(default=1, ge=1)
    pool_max: int = Field(default=8, ge=1)
    # How long a request waits for a pooled connection before a 503 (web process).
    pool_timeout_s: float = Field(default=10.0, gt=0)
    # The schema owner that runs migrations. Unset: migrations run as ``user`` (one role for
    # everything, so the database cannot keep the services from editing the audit trail; see
    # README "Security"). ``coldchain up`` creates a separate owner for its local database.
    owner_user: str | None = None
    owner_password: SecretStr | None = None

    @property
    def dsn(self) -> str:
        """A libpq connection URI for the services' role."""
        return self._uri(self.user, self.password)

    @property
    def migration_dsn(self) -> str:
        """A libpq connection URI for the schema owner (``dsn`` when no owner is set)."""
        if self.owner_user is None:
            return self.dsn
        return self._uri(self.owner_user, self.owner_password or self.password)

    def _uri(self, user: str, password: SecretStr) -> str:
        pw = quote(password.get_secret_value(), safe="")
        return f"postgresql://{quote(user, safe='')}:{pw}@{self.host}:{self.port}/{self.name}"


class MqttSettings(BaseModel):
    """MQTT broker connection and topic layout."""

    host: str = "127.0.0.1"
    port: int = 51883
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: Path | None = None
    topic_root: str = "coldchain/v1"
    # None (the default): the ingester subscribes plainly in its own persistent session, which
    # Mosquitto 2.0 keeps, with its queued messages, across broker restarts. A group name opts
    # into a shared subscription ($share/{group}/…), which Mosquitto 2.0 does NOT restore after
    # a broker restart: what is published between the restart and the ingester's return is
    # acknowledged and dropped (docs/PROTOCOL.md, "Acknowledgement").
    shared_group: str | None = None
    # The broker plugin accepts a client id that is the user name or "user name:suffix".
    client_id: str = "coldchain-ingest"
    # How long the broker keeps an absent ingester's session and queued messages; deploy/
    # mosquitto.conf caps every session at 14 days (persistent_client_expiration).
    session_expiry_s: int = Field(default=14 * 24 * 3600, ge=0)
    keepalive_s: int = Field(default=30, ge=5)


class IngestSettings(BaseModel):
    """Batching, limits and validation for the ingester."""

    # 5,000 rather than 2,000 (issue 15, bench/ingest_throughput.py, same run): a batch writes one
    # device_state row and one change-log row per logger it holds, so fuller batches cost the
    # database less per reading when many loggers report at once (live single readings 0.74x ->
    # 0.87x the broker's rate, 60-reading uploads 0.78x -> 0.91x COPY; peak RSS 66 -> 74 MB).
    # At low rates the age limit below closes a batch long before it is full.
    batch_max_readings: int = Field(default=5000, ge=1)
    batch_max_age_ms: int = Field(default=100, ge=1)
    # MQTT 5 receive maximum: how many unacknowledged messages the broker may hand us at once.
    # None = twice the batch size, so one batch fills while the previous one commits.
    receive_maximum: int | None = Field(default=None, ge=1, le=65535)
    max_payload_bytes: int = Field(default=256 * 1024, ge=256)
    max_batch_readings: int = Field(default=10_000, ge=1)
    max_future_s: int = Field(default=300, ge=0)
    require_known_device: bool = True


class ReminderMinutes(BaseModel):
    """Minutes between reminders of an unacknowledged alert, per severity (0: no reminders)."""

    critical: float = Field(default=5.0, ge=0, le=60 * 24 * 365)
    major: float = Field(default=15.0, ge=0, le=60 * 24 * 365)
    warning: float = Field(default=60.0, ge=0, le=60 * 24 * 365)
    info: float = Field(default=0.0, ge=0, le=60 * 24 * 365)


class AlertsSettings(BaseModel):
    """Rules engine and notification delivery."""

    # A *gap*: two readings further apart than this × the logging interval (unknown time).
    gap_factor: float = Field(default=2.0, gt=1.0)
    poll_interval_s: float = Field(default=5.0, gt=0)
    offline_check_interval_s: float = Field(default=30.0, gt=0)
    # Checkpoints of each pair's evaluation (alerts/checkpoints.py): one every interval, that far
    # behind the latest reading at least, the newest kept (0: none, every round judges in full).
    checkpoint_interval_s: float = Field(default=3600.0, gt=0)
    checkpoint_lag_s: float = Field(default=600.0, ge=0)
    checkpoints_kept: int = Field(default=12, ge=0, le=1000)
    # Rules: a TOML/YAML file on top of the defaults each product row gives (alerts/rules.py).
    rules_file: Path | None = None
    clear_delay_s: float = Field(default=300.0, ge=0)
    # *Offline*: no reading for this × the logging interval; the one definition the engine's
    # "no data" alert, the fleet view and the shipment page use (coldchain/thermal/limits.py).
    offline_factor: float = Field(default=10.0, gt=1.0)
    battery_threshold: float = Field(default=0.2, gt=0, lt=1)
    # Escalation: tier k is notified after k × this while nobody acknowledges (unless the rules
    # file gives each tier its own after_min).
    escalation_minutes: float = Field(default=15.0, gt=0)
    escalation_check_interval_s: float = Field(default=10.0, gt=0)
    # Reminders (alerts/reminders.py): an unacknowledged alert is notified again every this many
    # minutes per severity (0: never), unless the rules file's [escalation.reminders] says else.
    reminder_minutes: ReminderMinutes = Field(default_factory=lambda: ReminderMinutes())
    # One-time acknowledgement links (and SMS reply codes) in notifications expire after this.
    ack_link_ttl_h: float = Field(default=24.0, gt=0, le=24 * 30)
    # The SMS gateway's auth token: inbound replies (POST /api/v1/sms/inbound) must carry its
    # X-Twilio-Signature when set; None: replies are not verified (a private gateway only).
    sms_inbound_token: SecretStr | None = None
    # Several engines (alerts/partitions.py): the shipments are split into this many partitions,
    # shared by the running engines (the same number for all; change it with all stopped). A
    # killed engine's partitions are taken within claim_interval_s; a hung one's (heartbeat
    # older than engine_timeout_s) within engine_timeout_s + claim_interval_s.
    partitions: int = Field(default=16, ge=1, le=4096)
    claim_interval_s: float = Field(default=1.0, gt=0)
    engine_timeout_s: float = Field(default=10.0, gt=0)
    # Delivery: tier 0 when the rules file has no [escalation] tiers.
    webhook_urls: list[str] = Field(default_factory=list)
    webhook_secret: SecretStr | None = None
    webhook_timeout_s: float = Field(default=10.0, gt=0)
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "coldchain@localhost"
    smtp_to: list[str] = Field(default_factory=list)
    delivery_max_attempts: int = Field(default=10, ge=1)
    delivery_backoff_s: float = Field(default=5.0, gt=0)
    delivery_backoff_max_s: float = Field(default=900.0, gt=0)
    # Flood control (alerts/flood.py): notifications one recipient gets per hour about one
    # device, about one shipment, in all (0: no limit; the rules file's [escalation.limits]
    # overrides them); what is held back is summed up in one digest this long after the first.
    flood_per_device_per_hour: int = Field(default=10, ge=0)
    flood_per_shipment_per_hour: int = Field(default=20, ge=0)
    flood_per_recipient_per_hour: int = Field(default=60, ge=0)
    flood_digest_after_s: float = Field(default=600.0, gt=0)
    # The other channels (alerts/channels/): where their APIs are (tests point them at local
    # servers), Opsgenie's API keys by the name the rules file uses, and the SMS gateway's
    # account (Twilio's Messages API shape).
    pagerduty_url: str = Field(
        default="https://events.pagerduty.com/v2/enqueue", pattern=r"^https?://\S+$"
    )
    opsgenie_url: str = Field(default="https://api.opsgenie.com", pattern=r"^https?://\S+$")
    opsgenie_api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    sms_gateway_url: str = Field(default="https://api.twilio.com", pattern=r"^https?://\S+$")
    sms_account_sid: str | None = None
    sms_auth_token: SecretStr | None = None
    sms_from: str | None = Field(default=None, pattern=r"^\+[1-9][0-9]{6,14}$")
    sms_max_chars: int = Field(default=320, ge=70, le=1600)
    # The pipeline watches itself (alerts/heartbeat.py, README "When the pipeline itself
    # fails"): while the engine is healthy it POSTs to this dead-man's-switch URL (a
    # healthchecks.io-style ping URL, a secret: never logged) every period, and to <url>/fail
    # with the reasons when it knows it is not. None: no heartbeat.
    heartbeat_url: SecretStr | None = None
    heartbeat_period_s: float = Field(default=60.0, gt=0)
    # Unhealthy when the oldest change the engines have not processed is older than this.
    heartbeat_max_lag_s: float = Field(default=300.0, gt=0)
    # "Ingest stalled" (a system alert, critical): no reading stored for this many minutes
    # across the fleet while loggers are expected to report.
    ingest_stall_min: float = Field(default=10.0, gt=0)

    @field_validator("heartbeat_url")
    @classmethod
    def _heartbeat_url_is_http(cls, v: SecretStr | None) -> SecretStr | None:
        # Said without the URL itself: its path is the secret.
        if v is not None and not re.match(r"^https?://[^/\s]+\S*$", v.get_secret_value()):
            raise ValueError("must be an http:// or https:// URL")
        return v


class AutomationSettings(BaseModel):
    """Shipments that start and arrive on their own, and lifecycle webhooks
    (``coldchain automate``; README "Shipments that start and arrive on their own")."""

    # Besides following new readings: every so often, every planned and in-transit shipment
    # with a logger is looked at again (a booking changed, a change committed out of order).
    sweep_interval_s: float = Field(default=60.0, gt=0)
    # Receivers of lifecycle events (created, started, arrived, verdict, released…), signed
    # with COLDCHAIN_ALERTS__WEBHOOK_SECRET and sent by the rules engine's delivery worker.
    webhook_urls: list[Annotated[str, Field(pattern=r"^https?://")]] = Field(default_factory=list)


class ForecastSettings(BaseModel):
    """Forecasts for shipments in transit (:mod:`coldchain.forecast.model`; README "Forecast")."""

    # How much a breach the engine's trend predicts before the expected arrival adds to the
    # chance of an excursion (1 - (1 - history) × (1 - weight)); bench/forecast_calibration.py
    # measures what fits.
    trend_weight: float = Field(default=0.5, ge=0, le=1)
    # The rules engine's excursion_risk rule reads each lane's finished shipments at most this
    # often (one statement per periodic pass for the lanes whose copy is older): a lane's
    # history changes by a shipment every few hours, its shipments in transit every pass.
    history_cache_s: float = Field(default=300.0, ge=0, le=86_400)


class InsightSettings(BaseModel):
    """Lane risk, carrier scorecards and the weekly lane report (README "Insight")."""

    # A lane gets a risk score once it has this many finished shipments (a month of it too).
    min_shipments: int = Field(default=5, ge=1, le=10_000)
    # A carrier is scored on a lane once it has carried this many legs there.
    min_carrier_legs: int = Field(default=5, ge=1, le=10_000)
    # The automation stage e-mails the weekly reports due (through the alerts' SMTP settings);
    # off, subscriptions are kept but nothing is sent.
    send_weekly_reports: bool = True


class WebSettings(BaseModel):
    """The web process: HTTP API and dashboard on one port."""

    host: str = "127.0.0.1"
    port: int = 8050
    refresh_ms: int = Field(default=3000, ge=500)
    # Requests that use the database (API and dashboard callbacks) served at once; more wait in
    # line up to ``queue_timeout_s``, then get 503 with Retry-After. None: ``db.pool_max``.
    max_concurrent_requests: int | None = Field(default=None, ge=1)
    queue_timeout_s: float = Field(default=5.0, gt=0)
    # Raster tiles drawn over the maps' own offline basemap, e.g.
    # https://tile.openstreetmap.org/{z}/{x}/{y}.png; None: the basemap only (dashboard/maps.py).
    # An http(s) URL template with {z}, {x} and {y}: anything else is refused at startup.
    map_tiles: str | None = Field(
        default=None, pattern=r"^https?://[^/\s]+/\S*\{z\}\S*\{x\}\S*\{y\}\S*$"
    )
    # Where people reach the dashboard: the base of the links notifications carry (the alert, a
    # one-time acknowledgement). None: http://<host>:<port>.
    public_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+[^/\s]$")

    def base_url(self) -> str:
        """The dashboard's address as people reach it, without a trailing slash."""
        return self.public_url or f"http://{self.host}:{self.port}"


class SimulatorSettings(BaseModel):
    """Defaults for ``coldchain simulate``."""

    scenario: str = "demo"
    speed: float = Field(default=60.0, gt=0)
    seed: int | None = None  # None: the scenario's own seed


class SecuritySettings(BaseModel):
    """Logins, tokens, request limits (README "Security")."""

    token_ttl_h: float = Field(default=12.0, gt=0, le=24 * 90)
    session_ttl_h: float = Field(default=12.0, gt=0, le=24 * 90)
    # Failed logins (and signature passwords) per account and address within the window, then
    # locked there; × 4 per address or per account, then throttled (security/ratelimit.py).
    login_max_failures: int = Field(default=5, ge=1)
    login_window_s: float = Field(default=900.0, gt=0)
    password_min_length: int = Field(default=12, ge=8)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # EPCIS documents (POST /api/v1/epcis/…) may be larger.
    max_upload_bytes: int = Field(default=32 * 1024 * 1024, ge=1024)
    cookie_secure: bool = False


class StackSettings(BaseModel):
    """The project-owned local PostgreSQL and Mosquitto that ``coldchain up`` starts."""

    data_dir: Path = Path(".coldchain")
    manage_services: bool = True
    # Per-logger passwords and an ACL on the local broker (README "Security").
    mqtt_auth: bool = True
    # TLS on the local broker: ``coldchain up`` makes a local CA and server certificate (openssl)
    # in {data_dir}/mosquitto/tls and points its stages at them.
    mqtt_tls: bool = False


class AskSettings(BaseModel):
    """Asking the platform in plain words (README "Ask"): the optional language-model answerer.

    Off by default: questions are answered on this machine by the default answerer, with no
    model and no network. With ``llm_enabled`` and ``llm_url`` (an OpenAI-compatible base URL,
    e.g. ``http://127.0.0.1:8000/v1``), questions go to ``{llm_url}/chat/completions`` with the
    platform's read-only query functions as tools, run with the asker's permissions; if the
    endpoint fails, the default answerer answers and says so."""

    llm_enabled: bool = False
    llm_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+[^/\s]$")
    llm_model: str = "gpt-4o-mini"
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(default=20.0, gt=0, le=300)
    # Tool calls the model may make for one question before it must answer.
    max_tool_calls: int = Field(default=6, ge=1, le=50)

    @model_validator(mode="after")
    def _url_when_enabled(self) -> AskSettings:
        if self.llm_enabled and self.llm_url is None:
            raise ValueError("ask.llm_url: set it (COLDCHAIN_ASK__LLM_URL) to enable the model")
        return self

    @property
    def uses_llm(self) -> bool:
        """Whether questions go to the language model first."""
        return self.llm_enabled and self.llm_url is not None


class Settings(BaseSettings):
    """Everything configurable, in one object."""

    model_config = SettingsConfigDict(
        env_prefix="COLDCHAIN_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    log_level: str = "INFO"
    db: DbSettings = Field(default_factory=DbSettings)
    mqtt: MqttSettings = Field(default_factory=MqttSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    automation: AutomationSettings = Field(default_factory=AutomationSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    insight: InsightSettings = Field(default_factory=InsightSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    simulator: SimulatorSettings = Field(default_factory=SimulatorSettings)
    security: SecuritySettings = Field(default_factory=SecuritySettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    ask: AskSettings = Field(default_factory=AskSettings)
