"""Settings: defaults in one place, ``LEDGER_*`` environment, explicit arguments win.

    settings = Settings.load(bootstrap_servers="127.0.0.1:9092")

Unknown keys are refused by name so a typo never silently falls back to a
default.  Security settings are passed through to kafka-python unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from .errors import ConfigError

# kafka-python options a deployment may need for SASL / TLS; passed through.
SECURITY_KEYS = (
    "security_protocol",
    "sasl_mechanism",
    "sasl_plain_username",
    "sasl_plain_password",
    "sasl_kerberos_service_name",
    "sasl_kerberos_domain_name",
    "sasl_oauth_token_provider",
    "ssl_cafile",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
    "ssl_crlfile",
    "ssl_ciphers",
)

KAFKA_CLIENTS = ("auto", "confluent", "kafka-python")
READ_AHEAD = ("auto", "process", "off")


#: A batch must hold the largest record Kafka delivers (1 MiB by default) and then some.
MIN_BATCH_BYTES = 2 * 1024 * 1024


def _check_log_origin(origin: str) -> None:
    """A schema-less URL-ish origin: host[/path], no scheme, no spaces or '+', no trailing '/'."""
    import re

    if "://" in origin or not re.fullmatch(r"[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~-]+)*", origin):
        raise ConfigError(f"log_origin {origin!r} is not a schema-less origin such as 'ledger.example.com/audit' "
                          "(host, then '/'-separated path segments of letters, digits, '.', '_', '~', '-')")


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "ledger."
    db: str = "./ledger.db"
    partitions: int = 6
    schemas_dir: str = ""  # an override of the schemas shipped in the package (ledger/wire/schemas)
    # Record times ingest flags as implausible (ledger.timecheck); recorded in a new ledger's meta.
    max_clock_skew_s: int = 300  # occurred_at this far after its Kafka timestamp: 5 minutes
    max_record_lag_s: int = 2_592_000  # occurred_at this far before it: 30 days
    kafka_client: str = "auto"  # auto | confluent | kafka-python: see ledger/kafka/__init__.py
    #: auto | process | off: the writer and replay fetch and decode in a second process (auto: on two
    #: or more CPUs); see ledger/ingest/readahead.py.
    read_ahead: str = "auto"
    #: Most bytes (keys + values + headers) in one writer batch. At most two batches are in memory
    #: (one committing, one being prepared) and fetches are capped to it, so this bounds the writer's
    #: memory whatever the records are. Decoded, a record can take ~30 times its bytes (a map of many
    #: tiny entries; control characters are six bytes each in the JSON form), hence 16 MiB: with it
    #: the writer stayed under 800 MiB on 1 MB records of every kind, and under 850 MiB with its
    #: read-ahead process (BENCHMARKS.md, bench/bench_writer_memory.py). Ordinary events (~1 KB) fill
    #: 10,000-record batches well below it.
    batch_max_bytes: int = 16 * 1024 * 1024
    #: The log origin: a schema-less URL naming this log; each partition's checkpoint origin is
    #: ``<log_origin>/<topic>/<partition>`` and the log key is named after it (README "Proving it").
    log_origin: str = "ledger.local/audit"
    security: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Defaults, then ``LEDGER_<NAME>`` from ``env`` (default os.environ), then overrides.

        ``None`` overrides are ignored, so CLI options that were not given fall
        through to the environment.
        """
        env = os.environ if env is None else env
        known = {f.name for f in fields(cls)}
        values: dict[str, Any] = {}
        security: dict[str, Any] = {}
        for name in known - {"security"}:
            raw = env.get(f"LEDGER_{name.upper()}")
            if raw is not None:
                values[name] = raw
        for key in SECURITY_KEYS:
            raw = env.get(f"LEDGER_{key.upper()}")
            if raw is not None:
                security[key] = raw
        for name, value in overrides.items():
            if value is None:
                continue
            if name in SECURITY_KEYS:
                security[name] = value
            elif name in known:
                values[name] = value
            else:
                raise ConfigError(
                    f"unknown setting {name!r}; known settings: "
                    + ", ".join(sorted(known - {'security'}) + list(SECURITY_KEYS))
                )
        if "partitions" in values:
            try:
                values["partitions"] = int(values["partitions"])
            except ValueError as err:
                raise ConfigError(f"partitions must be an integer, got {values['partitions']!r}") from err
            if values["partitions"] < 1:
                raise ConfigError("partitions must be at least 1")
        for name in ("max_clock_skew_s", "max_record_lag_s"):
            if name in values:
                try:
                    values[name] = int(values[name])
                except (TypeError, ValueError) as err:
                    raise ConfigError(f"{name} must be a whole number of seconds, got {values[name]!r}") from err
                if values[name] < 0:
                    raise ConfigError(f"{name} must be 0 or more seconds")
        if values.get("kafka_client", "auto") not in KAFKA_CLIENTS:
            raise ConfigError(
                f"kafka_client must be one of {', '.join(KAFKA_CLIENTS)}, got {values['kafka_client']!r}"
            )
        if values.get("read_ahead", "auto") not in READ_AHEAD:
            raise ConfigError(f"read_ahead must be one of {', '.join(READ_AHEAD)}, got {values['read_ahead']!r}")
        if "batch_max_bytes" in values:
            try:
                values["batch_max_bytes"] = int(values["batch_max_bytes"])
            except ValueError as err:
                raise ConfigError(f"batch_max_bytes must be an integer, got {values['batch_max_bytes']!r}") from err
            if values["batch_max_bytes"] < MIN_BATCH_BYTES:
                raise ConfigError(f"batch_max_bytes must be at least {MIN_BATCH_BYTES} (two 1 MiB records)")
        if "log_origin" in values:
            _check_log_origin(values["log_origin"])
        if "ssl_check_hostname" in security and isinstance(security["ssl_check_hostname"], str):
            security["ssl_check_hostname"] = security["ssl_check_hostname"].lower() in ("1", "true", "yes")
        settings = cls(**values, security=security)
        if not settings.bootstrap_servers.strip():
            raise ConfigError("bootstrap_servers must not be empty")
        return settings

    def kafka_options(self) -> dict[str, Any]:
        """Connection options for any kafka-python client."""
        return {"bootstrap_servers": self.bootstrap_servers.split(","), **dict(self.security)}

    def with_(self, **changes: Any) -> "Settings":
        return replace(self, **changes)
