"""Bearer tokens: key files, issuing from the CLI, and every way a token is refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

pytest.importorskip("jwt", reason="the http extra (PyJWT) is needed for tokens")

from ledger.errors import ConfigError
from ledger.http.tokens import (
    TokenError,
    TokenVerifier,
    issue_token,
    write_keypair,
)


@pytest.fixture
def keys(tmp_path):
    private, public = write_keypair(tmp_path / "api.key")
    return private, public


def test_keygen_writes_an_owner_only_signing_key_and_a_public_key(tmp_path):
    """`ledger tokens keygen --out FILE` makes FILE mode 0600 and FILE.pub, and refuses to overwrite."""
    out = tmp_path / "k"
    run = subprocess.run([sys.executable, "-m", "ledger", "tokens", "keygen", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert b"PUBLIC KEY" in (tmp_path / "k.pub").read_bytes()
    again = subprocess.run([sys.executable, "-m", "ledger", "tokens", "keygen", "--out", str(out)],
                           capture_output=True, text=True)
    assert again.returncode == 1 and "refusing to overwrite" in again.stderr and "Traceback" not in again.stderr


def test_keygen_makes_a_missing_directory_owner_only_and_an_unwritable_out_is_one_clean_error(tmp_path):
    """The README's `ledger tokens keygen --out secrets/api.key` works where secrets/ does not exist yet."""
    out = tmp_path / "secrets" / "api.key"
    run = subprocess.run([sys.executable, "-m", "ledger", "tokens", "keygen", "--out", str(out)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert stat.S_IMODE(os.stat(out.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    bad = subprocess.run([sys.executable, "-m", "ledger", "tokens", "keygen", "--out", str(blocked / "api.key")],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "--out" in bad.stderr and "cannot write the key" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_issue_prints_the_token_alone_and_it_verifies_with_the_public_key(keys):
    """`ledger tokens issue` prints one line, a JWT with kid/aud/iat/exp/jti/scope/holder."""
    private, public = keys
    run = subprocess.run([sys.executable, "-m", "ledger", "tokens", "issue", "--key", str(private), "--scope",
                          "audit:read", "--ttl", "15m", "--holder", "emp-7", "--organization", "Privacy Office"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    token = run.stdout.strip()
    assert run.stdout == token + "\n" and token.count(".") == 2
    p = TokenVerifier.from_files(public).verify(token)
    assert p.scopes == {"audit:read"} and p.subject is None
    assert p.holder == {"id": "emp-7", "type": "EMPLOYEE", "role": "auditor", "organization": "Privacy Office"}
    assert 890 <= p.expires_at - p.claims["iat"] <= 900
    import jwt

    assert jwt.get_unverified_header(token)["kid"] and jwt.get_unverified_header(token)["alg"] == "EdDSA"


def test_a_subject_token_is_held_by_its_customer(keys):
    """A subject:<id> token's holder is that customer, of type SUBJECT; all after the prefix is the id."""
    private, public = keys
    verifier = TokenVerifier.from_files(public)
    p = verifier.verify(issue_token(private, scope="subject:cust-1"))
    assert p.subject == "cust-1" and p.holder["type"] == "SUBJECT" and p.holder["id"] == "cust-1"
    odd = verifier.verify(issue_token(private, scope="subject:c1 audit:read"))
    assert odd.subject == "c1 audit:read" and not odd.can("audit:read")


def test_forged_expired_wrong_key_revoked_and_garbage_tokens_are_refused(keys, tmp_path):
    """Each bad token raises TokenError with a reason that does not contain the token."""
    private, public = keys
    other, _ = write_keypair(tmp_path / "other.key")
    revoked = tmp_path / "revoked.txt"
    revoked.write_text("# revoked\n")
    verifier = TokenVerifier.from_files(public, revoked=revoked)
    good = issue_token(private, scope="audit:read", holder="emp-1")
    head, body, sig = good.split(".")
    forged = ".".join((head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig))
    expired = issue_token(private, scope="audit:read", holder="emp-1", ttl="1m", now=int(time.time()) - 3600)
    wrong_key = issue_token(other, scope="audit:read", holder="emp-1")
    wrong_aud = issue_token(private, scope="audit:read", holder="emp-1", audience="other")
    for bad in (forged, expired, wrong_key, wrong_aud, "", "abc", "a.b.c", good + "x"):
        with pytest.raises(TokenError) as info:
            verifier.verify(bad)
        assert (bad or "\0") not in info.value.reason
    verifier.verify(good)
    import jwt

    revoked.write_text(jwt.decode(good, options={"verify_signature": False})["jti"] + "\n")
    with pytest.raises(TokenError, match="revoked"):
        verifier.verify(good)


def test_the_server_refuses_a_signing_key_as_token_key(keys):
    """--token-key must be a public key: a server holding the private key could mint tokens."""
    private, _ = keys
    with pytest.raises(ConfigError, match="public key"):
        TokenVerifier.from_files(private)


def test_bad_scopes_and_holders_are_refused_when_issuing(keys):
    """Unknown scopes, a subject scope mixed with others, a missing auditor holder: ConfigError naming the option."""
    private, _ = keys
    with pytest.raises(ConfigError, match="--scope"):
        issue_token(private, scope="root", holder="x")
    with pytest.raises(ConfigError, match="--scope"):
        issue_token(private, scope="audit:read subject:c1", holder="x")
    with pytest.raises(ConfigError, match="--holder"):
        issue_token(private, scope="audit:read")
    with pytest.raises(ConfigError, match="--ttl"):
        issue_token(private, scope="admin", holder="x", ttl="forever")


def test_identity_provider_tokens_from_a_jwks_file(keys, tmp_path):
    """A token signed by a key in the --jwks file is accepted; its sub names the holder."""
    import json

    import jwt
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    _, public = keys
    idp = Ed25519PrivateKey.generate()
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(idp.public_key()))
    jwk.update(kid="idp-1", alg="EdDSA")
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk]}))
    verifier = TokenVerifier.from_files(public, jwks=tmp_path / "jwks.json", jwks_issuer="https://idp.example")
    now = int(time.time())
    token = jwt.encode({"aud": "ledger-api", "iat": now, "exp": now + 60, "jti": "j1", "scope": "audit:read",
                        "sub": "alice@example.com", "iss": "https://idp.example"}, idp, algorithm="EdDSA",
                       headers={"kid": "idp-1"})
    p = verifier.verify(token)
    assert p.holder["id"] == "alice@example.com" and p.holder["type"] == "EMPLOYEE"
    bad_iss = jwt.encode({"aud": "ledger-api", "iat": now, "exp": now + 60, "jti": "j2", "scope": "audit:read",
                          "sub": "mallory", "iss": "https://evil.example"}, idp, algorithm="EdDSA",
                         headers={"kid": "idp-1"})
    with pytest.raises(TokenError):
        verifier.verify(bad_iss)
