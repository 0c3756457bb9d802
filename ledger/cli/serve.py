"""`ledger tokens keygen|issue` and `ledger serve`: the HTTP API and the tokens that open it.

Thin commands over :mod:`ledger.http`. FastAPI, uvicorn, PyJWT and
cryptography (the ``http`` extra) are imported inside the commands only, so
the rest of the CLI starts without them.
"""

from __future__ import annotations

import argparse
import sys

_RAW = argparse.RawDescriptionHelpFormatter

TOKENS_EPILOG = """\
Scopes: audit:read (everything, auditor audience; requests must carry an
X-Justification header), subject:<customer id> (only that customer's own data,
as the customer may see it), admin (verify). The holder is who the recorded
reads name as actor: an employee or authority id for audit and admin tokens,
the customer for subject tokens.

example:
  ledger tokens keygen --out /etc/ledger/api.key      # api.key (0600) + api.key.pub
  ledger tokens issue --key /etc/ledger/api.key --scope audit:read --ttl 15m \\
      --holder emp-1007 --role privacy_officer --organization "Privacy Office"
  ledger tokens issue --key /etc/ledger/api.key --scope subject:cust-000042 --ttl 1h
"""

SERVE_EPILOG = """\
The server reads the ledger read-only and gets only the public key, so it
cannot mint tokens. Every answered request that returns customer data is
recorded as a DataAccessed through the producer SDK in durable mode (an
outbox, --outbox, default LEDGER_FILE.reads-outbox.db beside the ledger); a
request whose record cannot be written is refused with 503.

Routes: /v1/subjects/{id}/who-saw, /v1/subjects/{id}/report, /v1/actors/{id}/accesses,
/v1/disclosures, /v1/disclosures/summary, /v1/obligations, /v1/findings, /v1/heads,
/v1/verify (admin), /v1/events/{id}/receipt (audit:read), /v1/consistency (audit:read or
admin), /v1/checkpoints, /v1/checkpoints/{origin}, /v1/log-vkey, /v1/report-vkey (public),
/openapi.json,
/healthz, /readyz (with the writer's lag behind Kafka when Kafka settings are given);
pages /console (auditors; /console/receipt verifies a pasted receipt in the browser),
/portal (customers), /login.

example:
  ledger serve --db ledger.db --listen 127.0.0.1:8080 --token-key /etc/ledger/api.key.pub
  ledger serve --db ledger.db --token-key api.key.pub --log-vkey keys/ledger.example.com_audit.vkey \\
      --log-origin ledger.example.com/audit --bootstrap-servers kafka:9092
  ledger serve --db ledger.db --token-key api.key.pub --log-vkey keys/ledger.example.com_audit.vkey \
      --report-key keys/reports.example.com_2026.key     # signed reports: ...report?format=json&signed=true
  ledger serve --listen 0.0.0.0:8443 --token-key api.key.pub --certfile cert.pem --keyfile key.pem
  ledger serve --db ledger.db --token-key api.key.pub --workers 2     # one process per core
"""


def register(subparsers, common) -> None:
    p = subparsers.add_parser("tokens", help="make the signing key and issue bearer tokens for `ledger serve`",
                              description="Make an Ed25519 signing key and issue bearer tokens (JWT, EdDSA).",
                              epilog=TOKENS_EPILOG, formatter_class=_RAW)
    sub = p.add_subparsers(dest="tokens_command", metavar="ACTION", required=True)
    k = sub.add_parser("keygen", help="write a new signing key (FILE, mode 0600) and its public key (FILE.pub)",
                       description="Write a new Ed25519 signing key to FILE (owner-only) and its public key to "
                                   "FILE.pub. Refuses to overwrite either.",
                       epilog="example:\n  ledger tokens keygen --out api.key\n", formatter_class=_RAW)
    k.add_argument("--out", required=True, metavar="FILE", help="where to write the signing key")
    k.set_defaults(func=run_keygen)
    i = sub.add_parser("issue", help="print a signed token (and nothing else) on stdout",
                       description="Print a signed bearer token on stdout, alone on its line.",
                       epilog=TOKENS_EPILOG, formatter_class=_RAW)
    i.add_argument("--key", required=True, metavar="FILE", help="the signing key (from keygen)")
    i.add_argument("--scope", required=True, metavar="SCOPE",
                   help="audit:read, admin, subject:<customer id> (audit:read and admin may be space-separated)")
    i.add_argument("--ttl", default="15m", metavar="DURATION", help="lifetime: 30s, 15m, 2h, 1d (default 15m; at most 30d)")
    i.add_argument("--holder", metavar="ID", help="who holds it (required for audit:read and admin)")
    i.add_argument("--holder-type", choices=("EMPLOYEE", "AUTHORITY"), help="kind of holder (default EMPLOYEE)")
    i.add_argument("--role", help="the holder's role, shown to customers (default auditor)")
    i.add_argument("--organization", help="the holder's organisation, shown to customers")
    i.add_argument("--audience", default=None, metavar="AUD", help="aud claim (default ledger-api)")
    i.set_defaults(func=run_issue)

    s = subparsers.add_parser("serve", parents=[common], help="serve the ledger over HTTP (API, console, portal)",
                              description="Serve the ledger read-only over HTTP: the query API, the auditor "
                                          "console and the customer portal.",
                              epilog=SERVE_EPILOG, formatter_class=_RAW)
    s.add_argument("--listen", default="127.0.0.1:8080", metavar="HOST:PORT", help="address (default 127.0.0.1:8080)")
    s.add_argument("--token-key", required=True, metavar="FILE.pub", help="public key that signs tokens")
    s.add_argument("--revoked", metavar="FILE", help="revoked token ids (jti), one per line; re-read on change")
    s.add_argument("--jwks", metavar="FILE", help="also accept tokens of an identity provider (its JWKS file)")
    s.add_argument("--jwks-issuer", metavar="ISS", help="required iss claim of the identity provider's tokens")
    s.add_argument("--audience", default=None, metavar="AUD", help="required aud claim (default ledger-api)")
    s.add_argument("--outbox", metavar="PATH", help="outbox of the recorded reads (default beside the ledger)")
    s.add_argument("--source-service", default="ledger-api", metavar="NAME",
                   help="source_service of the recorded reads (default ledger-api)")
    s.add_argument("--request-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="longest a query may run before it is refused with 503 (default 10)")
    s.add_argument("--log-vkey", action="append", metavar="FILE",
                   help="the log's verifier key (.vkey from `ledger keys generate`), served at /v1/log-vkey and "
                        "used by the pages that verify receipts and checkpoints; repeatable (key rotation)")
    s.add_argument("--witness-vkey", action="append", metavar="FILE",
                   help="a witness's verifier key (.vkey of `ledger keys generate NAME --out DIR --cosigner`): its "
                        "cosignatures on the checkpoints are checked and shown as verified; repeatable")
    s.add_argument("--report-key", metavar="FILE",
                   help="a report key (`ledger keys generate NAME --out DIR --report`, not the log's key): signs "
                        "the reports of /v1/subjects/{id}/report?signed=true; its vkey is served at /v1/report-vkey")
    s.add_argument("--log-origin", metavar="ORIGIN", help="log origin of the checkpoints (env LEDGER_LOG_ORIGIN)")
    s.add_argument("--workers", type=int, default=1, metavar="N",
                   help="server processes on the one port (a SO_REUSEPORT socket each: the kernel spreads the "
                        "connections), sharing the outbox and the cursor secret (default 1)")
    s.add_argument("--threads", type=int, default=8, metavar="N",
                   help="threads per process that run the queries (default 8)")
    s.add_argument("--server-timing", action="store_true",
                   help="send a Server-Timing header: ms spent recording the read (record) and in the "
                        "application (app); for benchmarks and diagnosis")
    s.add_argument("--certfile", metavar="PEM", help="TLS certificate (with --keyfile)")
    s.add_argument("--keyfile", metavar="PEM", help="TLS private key (with --certfile)")
    s.set_defaults(func=run_serve)


def run_keygen(args) -> int:
    from ..http.tokens import write_keypair

    private, public = write_keypair(args.out)
    print(f"wrote {private} (signing key, mode 0600: keep it off the server) and {public} (for --token-key)",
          file=sys.stderr)
    return 0


def run_issue(args) -> int:
    from ..http.tokens import AUDIENCE, issue_token

    token = issue_token(args.key, scope=args.scope, ttl=args.ttl, holder=args.holder, holder_type=args.holder_type,
                        role=args.role, organization=args.organization, audience=args.audience or AUDIENCE)
    print(token)
    return 0


def run_serve(args) -> int:
    from ..errors import ConfigError
    from ..http.server import ServeConfig, serve
    from . import settings_from

    if bool(args.certfile) != bool(args.keyfile):
        raise ConfigError("--certfile and --keyfile go together")
    settings = settings_from(args)
    if args.log_origin:
        from ..config import _check_log_origin

        _check_log_origin(args.log_origin)
        settings = settings.with_(log_origin=args.log_origin)
    config = ServeConfig.from_args(args, settings)
    return serve(config)
