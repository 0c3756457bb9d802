"""The ``LEDGER_*`` security settings, mapped onto each Kafka client.

    kafka_python_options(settings)   # {"bootstrap_servers": [...], "security_protocol": "SASL_SSL", ...}
    librdkafka_options(settings)     # {"bootstrap.servers": "...", "security.protocol": "SASL_SSL", ...}

One table (``MAPPING``, also in docs/kafka-clients.md) says what each setting
becomes in kafka-python and in librdkafka (confluent-kafka). A setting a client
cannot honour is refused with :class:`ConfigError` naming it, and so is a
setting that would have no effect (an ``ssl_*`` file without an SSL protocol,
a SASL user without a SASL protocol): either would otherwise be ignored, and a
deployment would believe it is protected when it is not.
"""

from __future__ import annotations

from typing import Any

from ..config import SECURITY_KEYS, Settings
from ..errors import ConfigError

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "GSSAPI", "OAUTHBEARER")

# Settings key -> (kafka-python option, librdkafka property, or None with the reason it is refused).
MAPPING: dict[str, tuple[str, str | None, str]] = {
    "security_protocol": ("security_protocol", "security.protocol", ""),
    "sasl_mechanism": ("sasl_mechanism", "sasl.mechanism", ""),
    "sasl_plain_username": ("sasl_plain_username", "sasl.username", ""),
    "sasl_plain_password": ("sasl_plain_password", "sasl.password", ""),
    "sasl_kerberos_service_name": ("sasl_kerberos_service_name", "sasl.kerberos.service.name", ""),
    "sasl_kerberos_domain_name": (
        "sasl_kerberos_domain_name", None,
        "librdkafka always uses the broker's own host name for Kerberos"),
    "sasl_oauth_token_provider": (
        "sasl_oauth_token_provider", None,
        "it is a kafka-python token-provider object; confluent-kafka needs an oauth_cb, not mapped yet"),
    "ssl_cafile": ("ssl_cafile", "ssl.ca.location", ""),
    "ssl_certfile": ("ssl_certfile", "ssl.certificate.location", ""),
    "ssl_keyfile": ("ssl_keyfile", "ssl.key.location", ""),
    "ssl_password": ("ssl_password", "ssl.key.password", ""),
    "ssl_check_hostname": ("ssl_check_hostname", "ssl.endpoint.identification.algorithm", ""),
    "ssl_crlfile": ("ssl_crlfile", "ssl.crl.location", ""),
    "ssl_ciphers": ("ssl_ciphers", "ssl.cipher.suites", ""),
}
assert set(MAPPING) == set(SECURITY_KEYS), "every security setting needs a row in MAPPING"


def _check(settings: Settings) -> dict[str, Any]:
    """The security settings after the checks both clients share; raises ConfigError naming the setting."""
    security = dict(settings.security)
    protocol = str(security.get("security_protocol", "PLAINTEXT")).upper()
    if protocol not in PROTOCOLS:
        raise ConfigError(f"security_protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    if "security_protocol" in security:
        security["security_protocol"] = protocol
    uses_ssl = protocol in ("SSL", "SASL_SSL")
    uses_sasl = protocol.startswith("SASL_")
    for key in security:
        if key.startswith("ssl_") and not uses_ssl:
            raise ConfigError(f"{key} is set but security_protocol is {protocol}, so it would be ignored; "
                              "set LEDGER_SECURITY_PROTOCOL=SSL or SASL_SSL, or unset it")
        if key.startswith("sasl_") and not uses_sasl:
            raise ConfigError(f"{key} is set but security_protocol is {protocol}, so it would be ignored; "
                              "set LEDGER_SECURITY_PROTOCOL=SASL_SSL or SASL_PLAINTEXT, or unset it")
    if uses_sasl:
        mechanism = str(security.get("sasl_mechanism", "")).upper()
        if mechanism not in MECHANISMS:
            raise ConfigError(f"sasl_mechanism must be one of {', '.join(MECHANISMS)} with "
                              f"security_protocol {protocol}, got {mechanism or 'nothing'!r}")
        security["sasl_mechanism"] = mechanism
        if mechanism in ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"):
            for key in ("sasl_plain_username", "sasl_plain_password"):
                if not security.get(key):
                    raise ConfigError(f"{key} is required with sasl_mechanism {mechanism}")
    return security


def kafka_python_options(settings: Settings) -> dict[str, Any]:
    """Connection and security options for a kafka-python client (names unchanged)."""
    return {"bootstrap_servers": settings.bootstrap_servers.split(","), **_check(settings)}


def librdkafka_options(settings: Settings) -> dict[str, Any]:
    """Connection and security properties for a confluent-kafka client; ConfigError for what it cannot honour."""
    options: dict[str, Any] = {"bootstrap.servers": settings.bootstrap_servers}
    security = _check(settings)
    for key in security:
        _, prop, reason = MAPPING[key]
        if prop is None:
            raise ConfigError(f"{key} cannot be honoured by confluent-kafka: {reason}; "
                              "set LEDGER_KAFKA_CLIENT=kafka-python to use it")
    for key, value in security.items():
        prop = MAPPING[key][1]
        if key == "sasl_mechanism" and value == "OAUTHBEARER":
            raise ConfigError("sasl_mechanism OAUTHBEARER cannot be honoured by confluent-kafka yet: its token "
                              "callback is not mapped; set LEDGER_KAFKA_CLIENT=kafka-python to use it")
        if key == "ssl_check_hostname":
            value = "https" if value else "none"
        options[prop] = value
    return options
