"""Bearer tokens for ``ledger serve``: Ed25519-signed JWTs (RFC 7519, EdDSA via PyJWT).

    write_keypair("api.key")                          # api.key (0600) and api.key.pub
    token = issue_token("api.key", scope="subject:cust-000042", ttl="15m")
    verifier = TokenVerifier.from_files("api.key.pub", revoked="revoked.txt")
    principal = verifier.verify(token)                # raises TokenError (-> 401)

Claims: ``aud`` (default :data:`AUDIENCE`), ``iat``, ``exp``, ``jti`` (a
random UUID: what a revocation list names), ``scope`` (RFC 8693 style: one
of ``audit:read``, ``admin``, ``subject:<customer id>``, or several
space-separated; a subject scope stands alone and all after ``subject:`` is
the customer id), ``sub`` and ``holder``
(``{"id", "type", "role", "organization"}``): who the recorded reads name as
actor. The header carries ``kid``, the RFC 7638 thumbprint of the public key.

The server is given only public keys (a PEM file, and optionally a JWKS file
of an identity provider), so it can check tokens but never mint them. A
token is never logged or stored: errors name the reason, not the token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, LedgerError

AUDIENCE = "ledger-api"
SCOPE_AUDIT = "audit:read"
SCOPE_ADMIN = "admin"
SUBJECT_PREFIX = "subject:"
#: Actor types a token holder may have (the DataAccessed schema's ActorType, less SERVICE/SYSTEM/PARTNER).
HOLDER_TYPES = ("EMPLOYEE", "AUTHORITY", "SUBJECT")
MAX_TTL_SECONDS = 30 * 86_400
LEEWAY_SECONDS = 5  # clock skew between the issuing host and the server
_TTL = re.compile(r"(\d+)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class TokenError(LedgerError):
    """A bearer token was refused; ``reason`` is safe to show (it never contains the token)."""

    def __init__(self, reason: str, code: str = "invalid_token"):
        self.reason = reason
        self.code = code
        super().__init__(reason)


@dataclass(frozen=True)
class Principal:
    """Who is asking, as a verified token says: scopes, holder, and the token's ``jti``."""

    jti: str
    scopes: frozenset[str]
    holder: dict
    expires_at: int
    subject: str | None = None  # the customer a subject token is for
    issuer: str | None = None
    claims: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def is_subject(self) -> bool:
        return self.subject is not None

    def can(self, scope: str) -> bool:
        return scope in self.scopes


# -- keys -------------------------------------------------------------------------------------------
def _crypto():
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    except ImportError as err:  # pragma: no cover - the http extra is missing
        raise ConfigError("tokens need the 'http' extra: pip install 'ledger[http]'") from err
    return serialization, Ed25519PrivateKey, Ed25519PublicKey


def _jwt():
    try:
        import jwt
    except ImportError as err:  # pragma: no cover
        raise ConfigError("tokens need PyJWT (the 'http' extra): pip install 'ledger[http]'") from err
    return jwt


def key_id(public_key) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of an Ed25519 public key."""
    serialization, _, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": x}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def write_keypair(out: str | os.PathLike) -> tuple[Path, Path]:
    """Write a new Ed25519 signing key to ``out`` (mode 0600) and its public key to ``out.pub``.

    Refuses to overwrite either file: a lost signing key only means new
    tokens; an overwritten one silently invalidates every token in use.
    """
    serialization, Ed25519PrivateKey, _ = _crypto()
    private_path, public_path = Path(out), Path(f"{out}.pub")
    for p in (private_path, public_path):
        if p.exists():
            raise ConfigError(f"{p} exists; refusing to overwrite a key (remove it first, or choose another --out)")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        # A missing directory is made owner-only, as `ledger keys generate` makes its --out.
        private_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Created with 0600 from the start: never readable by others, not even for an instant.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        public_path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    except OSError as err:
        raise ConfigError(f"--out {out}: cannot write the key: {err.strerror or err}") from err
    return private_path, public_path


def load_private_key(path: str | os.PathLike):
    serialization, Ed25519PrivateKey, _ = _crypto()
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except OSError as err:
        raise ConfigError(f"--key {path}: cannot read it: {err.strerror or err}") from err
    except ValueError as err:
        raise ConfigError(f"--key {path}: not a PEM private key ({err})") from err
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"--key {path}: not an Ed25519 key (write one with `ledger tokens keygen`)")
    return key


def load_public_key(path: str | os.PathLike):
    serialization, _, Ed25519PublicKey = _crypto()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ConfigError(f"--token-key {path}: cannot read it: {err.strerror or err}") from err
    if b"PRIVATE KEY" in data:
        raise ConfigError(f"--token-key {path}: this is a signing key; give the server only the public key "
                          "(FILE.pub), so that it cannot mint tokens")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as err:
        raise ConfigError(f"--token-key {path}: not a PEM public key ({err})") from err
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"--token-key {path}: not an Ed25519 public key")
    return key


# -- scopes, holders, lifetimes ---------------------------------------------------------------------
def parse_ttl(text: str) -> int:
    """Seconds in ``15m``, ``2h``, ``30s``, ``1d`` (at most :data:`MAX_TTL_SECONDS`)."""
    m = _TTL.fullmatch(text.strip())
    if not m:
        raise ConfigError(f"--ttl {text!r}: write a number and a unit, e.g. 15m, 2h, 30s or 1d")
    seconds = int(m[1]) * _UNITS[m[2]]
    if not 0 < seconds <= MAX_TTL_SECONDS:
        raise ConfigError(f"--ttl {text!r}: must be more than 0 and at most 30d")
    return seconds


def parse_scopes(scope: str) -> tuple[frozenset[str], str | None]:
    """The scopes of a space-separated ``scope`` claim and the subject of a subject scope."""
    scope = str(scope)
    if scope.startswith(SUBJECT_PREFIX):
        # A subject scope stands alone, so all that follows the prefix is the customer id, spaces
        # included: "subject:c1 audit:read" is a token for customer "c1 audit:read", never an auditor's.
        subject = scope[len(SUBJECT_PREFIX):]
        if not subject or _CONTROL.search(subject):
            raise TokenError("the token's subject scope names no valid customer id")
        return frozenset({scope}), subject
    scopes = frozenset(s for s in scope.split(" ") if s)
    if not scopes:
        raise TokenError("the token has no scope")
    for s in scopes:
        if s.startswith(SUBJECT_PREFIX):
            raise TokenError("a subject scope cannot be combined with other scopes")
        if s not in (SCOPE_AUDIT, SCOPE_ADMIN):
            raise TokenError(f"unknown scope {s!r}; known: {SCOPE_AUDIT}, {SCOPE_ADMIN}, {SUBJECT_PREFIX}<id>")
    return scopes, None


def make_holder(scope: str, holder_id: str | None, holder_type: str | None = None, role: str | None = None,
                organization: str | None = None) -> dict:
    """The ``holder`` claim: who the recorded reads will name as actor."""
    try:
        _, subject = parse_scopes(scope)
    except TokenError as err:
        raise ConfigError(f"--scope: {err.reason}") from None
    if subject is not None:
        if holder_id not in (None, subject):
            raise ConfigError("--holder: a subject token's holder is the customer itself; leave --holder out")
        if holder_type not in (None, "SUBJECT"):
            raise ConfigError("--holder-type: a subject token's holder is of type SUBJECT")
        return {"id": subject, "type": "SUBJECT", "role": None, "organization": None}
    if not holder_id:
        raise ConfigError("--holder: name who holds this token (e.g. an employee id); the reads it makes are "
                          "recorded under that name")
    holder_type = holder_type or "EMPLOYEE"
    if holder_type not in ("EMPLOYEE", "AUTHORITY"):
        raise ConfigError("--holder-type: an auditor or admin token is held by an EMPLOYEE or an AUTHORITY")
    for name, value in (("--holder", holder_id), ("--role", role), ("--organization", organization)):
        if value is not None and (not value.strip() or _CONTROL.search(value)):
            raise ConfigError(f"{name}: must be printable, non-empty text")
    return {"id": holder_id, "type": holder_type, "role": role or "auditor", "organization": organization}


def issue_token(key_file: str | os.PathLike, *, scope: str, ttl: str = "15m", holder: str | None = None,
                holder_type: str | None = None, role: str | None = None, organization: str | None = None,
                audience: str = AUDIENCE, now: int | None = None) -> str:
    """A signed token (compact JWS) for ``scope``, valid for ``ttl``."""
    key = load_private_key(key_file)
    seconds = parse_ttl(ttl)
    holder_claim = make_holder(scope, holder, holder_type, role, organization)
    issued = int(time.time()) if now is None else now
    claims = {
        "aud": audience, "iat": issued, "nbf": issued, "exp": issued + seconds, "jti": str(uuid.uuid4()),
        "scope": scope, "sub": holder_claim["id"], "holder": holder_claim,
    }
    return _jwt().encode(claims, key, algorithm="EdDSA", headers={"kid": key_id(key.public_key())})


# -- verification -----------------------------------------------------------------------------------
class RevocationList:
    """A file of revoked ``jti`` values, one per line (``#`` comments); re-read when it changes."""

    def __init__(self, path: str | os.PathLike | None):
        self.path = None if path is None else Path(path)
        self._stamp: tuple[int, int] | None = None
        self._jtis: frozenset[str] = frozenset()
        self._lock = threading.Lock()
        if self.path is not None:
            if not self.path.exists():
                raise ConfigError(f"--revoked {self.path}: no such file (create an empty one to start a list)")
            self._reload()

    def _reload(self) -> None:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        self._jtis = frozenset(line.split("#", 1)[0].strip() for line in lines) - {""}
        self._stamp = stamp

    def __contains__(self, jti: str) -> bool:
        if self.path is None:
            return False
        with self._lock:
            try:
                self._reload()
            except OSError:
                # A list that cannot be read must not let revoked tokens back in: refuse them all.
                raise TokenError("the revocation list cannot be read; tokens are refused until it can",
                                 code="revocation_unavailable") from None
        return jti in self._jtis


class TokenVerifier:
    """Checks tokens against the server's public key (and an identity provider's JWKS)."""

    def __init__(self, public_keys: dict[str, object], *, audience: str = AUDIENCE,
                 revoked: RevocationList | None = None, jwks: dict[str, object] | None = None,
                 jwks_issuer: str | None = None):
        self.public_keys = public_keys  # kid -> Ed25519 public key
        self.jwks = jwks or {}  # kid -> PyJWK of an identity provider
        self.jwks_issuer = jwks_issuer
        self.audience = audience
        self.revoked = revoked or RevocationList(None)
        # Verified tokens by their text: an Ed25519 check per request is the biggest cost of a small
        # answer. Expiry and revocation are still checked on every use.
        self._verified: dict[str, Principal] = {}

    @classmethod
    def from_files(cls, public_key: str | os.PathLike, *, revoked: str | os.PathLike | None = None,
                   jwks: str | os.PathLike | None = None, jwks_issuer: str | None = None,
                   audience: str = AUDIENCE) -> "TokenVerifier":
        key = load_public_key(public_key)
        return cls({key_id(key): key}, audience=audience, revoked=RevocationList(revoked),
                   jwks=load_jwks(jwks) if jwks else None, jwks_issuer=jwks_issuer)

    def verify(self, token: str) -> Principal:
        known = self._verified.get(token)
        if known is not None:
            if time.time() > known.expires_at + LEEWAY_SECONDS:
                self._verified.pop(token, None)
                raise TokenError("the token has expired")
            if known.jti in self.revoked:
                raise TokenError("the token has been revoked")
            return known
        principal = self._verify(token)
        if len(self._verified) >= 4096:
            self._verified.clear()
        self._verified[token] = principal
        return principal

    def _verify(self, token: str) -> Principal:
        jwt = _jwt()
        if not token or len(token) > 8192:
            raise TokenError("malformed bearer token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed bearer token") from None
        kid = header.get("kid")
        options = {"require": ["exp", "iat", "jti", "aud", "scope"]}
        try:
            if kid in self.public_keys and header.get("alg") == "EdDSA":
                claims = jwt.decode(token, self.public_keys[kid], algorithms=["EdDSA"], audience=self.audience,
                                    leeway=LEEWAY_SECONDS, options=options)
            elif kid in self.jwks:
                jwk = self.jwks[kid]
                claims = jwt.decode(token, jwk.key, algorithms=[jwk.algorithm_name], audience=self.audience,
                                    issuer=self.jwks_issuer, leeway=LEEWAY_SECONDS, options=options)
            else:
                raise TokenError("the token was not signed by a key this server knows")
        except jwt.ExpiredSignatureError:
            raise TokenError("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError(f"the token is not for this service (audience must be {self.audience!r})") from None
        except jwt.MissingRequiredClaimError as err:
            raise TokenError(f"the token lacks the {err.claim!r} claim") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not verify") from None
        except jwt.PyJWTError as err:
            raise TokenError(f"the token is not valid: {type(err).__name__}") from None
        jti = claims["jti"]
        if not isinstance(jti, str) or not jti:
            raise TokenError("the token's jti must be a non-empty string")
        if jti in self.revoked:
            raise TokenError("the token has been revoked")
        scopes, subject = parse_scopes(claims["scope"])
        holder = _holder_from(claims, subject)
        return Principal(jti=jti, scopes=scopes, holder=holder, expires_at=int(claims["exp"]), subject=subject,
                         issuer=claims.get("iss"), claims=claims)


def _holder_from(claims: dict, subject: str | None) -> dict:
    if subject is not None:
        return {"id": subject, "type": "SUBJECT", "role": None, "organization": None}
    h = claims.get("holder")
    if not isinstance(h, dict):
        # An identity provider's token: the subject claim names the person.
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("the token names no holder (holder or sub claim)")
        h = {"id": sub, "type": "EMPLOYEE", "role": "auditor", "organization": claims.get("org")}
    holder = {k: h.get(k) for k in ("id", "type", "role", "organization")}
    if not isinstance(holder["id"], str) or not holder["id"] or _CONTROL.search(holder["id"]):
        raise TokenError("the token's holder has no valid id")
    if holder["type"] not in ("EMPLOYEE", "AUTHORITY"):
        raise TokenError("an auditor or admin token must be held by an EMPLOYEE or an AUTHORITY")
    for k in ("role", "organization"):
        if holder[k] is not None and (not isinstance(holder[k], str) or _CONTROL.search(holder[k])):
            raise TokenError(f"the token's holder {k} must be printable text")
    return holder


def load_jwks(path: str | os.PathLike) -> dict[str, object]:
    """kid -> PyJWK from an identity provider's JWKS file (only keys that carry a kid and an alg)."""
    jwt = _jwt()
    try:
        data = Path(path).read_text(encoding="utf-8")
        keyset = jwt.PyJWKSet.from_json(data)
    except OSError as err:
        raise ConfigError(f"--jwks {path}: cannot read it: {err.strerror or err}") from err
    except (jwt.PyJWTError, ValueError) as err:
        raise ConfigError(f"--jwks {path}: not a usable JWKS ({err})") from err
    keys = {}
    for k in keyset.keys:
        if k.key_id and k.algorithm_name and k.algorithm_name != "none":
            keys[k.key_id] = k
    if not keys:
        raise ConfigError(f"--jwks {path}: no key with both 'kid' and 'alg'")
    return keys
