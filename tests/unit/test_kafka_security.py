"""The LEDGER_* security settings mapped onto both Kafka clients (ledger/kafka/security.py); no broker."""

from __future__ import annotations

import pytest

from ledger.config import SECURITY_KEYS, Settings
from ledger.errors import ConfigError
from ledger.kafka.security import MAPPING, kafka_python_options, librdkafka_options

SCRAM = {
    "LEDGER_SECURITY_PROTOCOL": "sasl_ssl",
    "LEDGER_SASL_MECHANISM": "scram-sha-512",
    "LEDGER_SASL_PLAIN_USERNAME": "ledger",
    "LEDGER_SASL_PLAIN_PASSWORD": "s3cret",
    "LEDGER_SSL_CAFILE": "/etc/kafka/ca.pem",
}


def load(env: dict, **overrides) -> Settings:
    return Settings.load(env={"LEDGER_BOOTSTRAP_SERVERS": "k1:9093,k2:9093", **env}, **overrides)


def test_every_security_setting_has_a_row():
    """The table covers exactly the settings Settings reads, so none can be passed through unmapped."""
    assert set(MAPPING) == set(SECURITY_KEYS)


def test_scram_over_tls_maps_onto_both_clients():
    """SCRAM-SHA-512 over SASL_SSL with a CA file: the same variables give each client its own names."""
    settings = load(SCRAM)
    assert kafka_python_options(settings) == {
        "bootstrap_servers": ["k1:9093", "k2:9093"], "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512", "sasl_plain_username": "ledger", "sasl_plain_password": "s3cret",
        "ssl_cafile": "/etc/kafka/ca.pem"}
    assert librdkafka_options(settings) == {
        "bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SASL_SSL", "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ledger", "sasl.password": "s3cret", "ssl.ca.location": "/etc/kafka/ca.pem"}


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_user_and_password_mechanisms(mechanism):
    """PLAIN and both SCRAM variants map the user and password to sasl.username / sasl.password."""
    settings = load({"LEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LEDGER_SASL_MECHANISM": mechanism,
                     "LEDGER_SASL_PLAIN_USERNAME": "u", "LEDGER_SASL_PLAIN_PASSWORD": "p"})
    rd = librdkafka_options(settings)
    assert (rd["sasl.mechanism"], rd["sasl.username"], rd["sasl.password"]) == (mechanism, "u", "p")
    assert kafka_python_options(settings)["sasl_mechanism"] == mechanism


def test_mutual_tls_with_client_certificate():
    """Client certificate, key, key password, CRL and ciphers map one to one; hostname checking on by default."""
    settings = load({"LEDGER_SECURITY_PROTOCOL": "SSL", "LEDGER_SSL_CAFILE": "ca.pem", "LEDGER_SSL_CERTFILE": "c.pem",
                     "LEDGER_SSL_KEYFILE": "k.pem", "LEDGER_SSL_PASSWORD": "kp", "LEDGER_SSL_CRLFILE": "crl.pem",
                     "LEDGER_SSL_CIPHERS": "ECDHE-RSA-AES256-GCM-SHA384"})
    rd = librdkafka_options(settings)
    assert rd == {"bootstrap.servers": "k1:9093,k2:9093", "security.protocol": "SSL", "ssl.ca.location": "ca.pem",
                  "ssl.certificate.location": "c.pem", "ssl.key.location": "k.pem", "ssl.key.password": "kp",
                  "ssl.crl.location": "crl.pem", "ssl.cipher.suites": "ECDHE-RSA-AES256-GCM-SHA384"}
    kp = kafka_python_options(settings)
    assert (kp["ssl_certfile"], kp["ssl_keyfile"], kp["ssl_password"]) == ("c.pem", "k.pem", "kp")


@pytest.mark.parametrize("text, algorithm, flag", [("false", "none", False), ("true", "https", True)])
def test_hostname_check_maps_to_endpoint_identification(text, algorithm, flag):
    """LEDGER_SSL_CHECK_HOSTNAME=false turns off librdkafka's endpoint identification, as kafka-python's check."""
    settings = load({"LEDGER_SECURITY_PROTOCOL": "SSL", "LEDGER_SSL_CHECK_HOSTNAME": text})
    assert librdkafka_options(settings)["ssl.endpoint.identification.algorithm"] == algorithm
    assert kafka_python_options(settings)["ssl_check_hostname"] is flag


@pytest.mark.parametrize("key, value", [("sasl_kerberos_domain_name", "kdc.example"),
                                        ("sasl_oauth_token_provider", object())])
def test_a_setting_confluent_cannot_honour_is_refused_by_name(key, value):
    """Settings with no librdkafka equivalent are a ConfigError naming them for confluent, accepted by kafka-python."""
    mechanism = "GSSAPI" if key.startswith("sasl_kerberos") else "OAUTHBEARER"
    settings = load({"LEDGER_SECURITY_PROTOCOL": "SASL_SSL", "LEDGER_SASL_MECHANISM": mechanism}, **{key: value})
    with pytest.raises(ConfigError, match=f"{key} cannot be honoured by confluent-kafka.*LEDGER_KAFKA_CLIENT=kafka-python"):
        librdkafka_options(settings)
    assert kafka_python_options(settings)[key] is value


def test_oauthbearer_is_refused_for_confluent():
    """OAUTHBEARER without a mapped token callback would fall back to librdkafka's unsecured tokens: refused."""
    settings = load({"LEDGER_SECURITY_PROTOCOL": "SASL_SSL", "LEDGER_SASL_MECHANISM": "OAUTHBEARER"})
    with pytest.raises(ConfigError, match="OAUTHBEARER cannot be honoured by confluent-kafka"):
        librdkafka_options(settings)


@pytest.mark.parametrize("env, named", [
    ({"LEDGER_SSL_CAFILE": "ca.pem"}, "ssl_cafile is set but security_protocol is PLAINTEXT"),
    ({"LEDGER_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "LEDGER_SASL_MECHANISM": "PLAIN", "LEDGER_SASL_PLAIN_USERNAME": "u",
      "LEDGER_SASL_PLAIN_PASSWORD": "p", "LEDGER_SSL_CAFILE": "ca.pem"}, "ssl_cafile is set but security_protocol is SASL_PLAINTEXT"),
    ({"LEDGER_SECURITY_PROTOCOL": "SSL", "LEDGER_SASL_PLAIN_USERNAME": "u"}, "sasl_plain_username is set but"),
    ({"LEDGER_SECURITY_PROTOCOL": "SASL_SSL"}, "sasl_mechanism must be one of"),
    ({"LEDGER_SECURITY_PROTOCOL": "SASL_SSL", "LEDGER_SASL_MECHANISM": "SCRAM-SHA-256",
      "LEDGER_SASL_PLAIN_USERNAME": "u"}, "sasl_plain_password is required with sasl_mechanism SCRAM-SHA-256"),
    ({"LEDGER_SECURITY_PROTOCOL": "TLS"}, "security_protocol must be one of"),
])
def test_settings_that_would_be_ignored_are_refused(env, named):
    """A setting without effect under the chosen protocol, or an incomplete SASL set, fails for both clients alike."""
    settings = load(env)
    for mapping in (kafka_python_options, librdkafka_options):
        with pytest.raises(ConfigError, match=named):
            mapping(settings)


def test_plaintext_default_maps_to_bootstrap_only():
    """With no security settings each client gets only the bootstrap servers."""
    settings = load({})
    assert kafka_python_options(settings) == {"bootstrap_servers": ["k1:9093", "k2:9093"]}
    assert librdkafka_options(settings) == {"bootstrap.servers": "k1:9093,k2:9093"}


def test_confluent_refuses_a_bad_value_by_its_own_check(tmp_path):
    """A value librdkafka rejects (a CA file that does not exist) is a ConfigError at open, before any connection."""
    from ledger.kafka import open_producer

    settings = load({"LEDGER_SECURITY_PROTOCOL": "SSL", "LEDGER_SSL_CAFILE": str(tmp_path / "missing.pem")},
                    kafka_client="confluent")
    with pytest.raises(ConfigError, match="confluent-kafka refused the settings"):
        open_producer(settings, bootstrap_timeout=1)
