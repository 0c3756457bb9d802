"""The HTTP layer: ``ledger serve``, its bearer tokens, the auditor console and the customer portal.

Reading guide, in the order a request passes through:

* ``tokens.py``    Ed25519 JWTs: key files, issuing, verifying, revocation, JWKS;
* ``auth.py``      the bearer token (header or login cookie) of a request → a :class:`Principal`;
* ``params.py``    query parameters checked with the CLI's own rules (``ledger.timeparse``, ``ledger.query``);
* ``cursor.py``    opaque page cursors bound to the token and the query (HMAC);
* ``recording.py`` every answered read recorded as a DataAccessed through the durable producer SDK;
* ``api.py``       the /v1 routes over the public library functions;
* ``pages.py``     server-rendered pages (console, portal, login), ``templates/``;
* ``problems.py``  the one JSON error shape, for every error;
* ``app.py``       assembles the FastAPI application; ``server.py`` runs it under uvicorn.

Beside it, ``witness_app.py`` is ``ledger witness serve``: the c2sp.org/tlog-witness binding, a plain
ASGI application (no FastAPI) under uvicorn.

Nothing here is imported by the read-only CLI: FastAPI, uvicorn, PyJWT and
Jinja2 come from the ``http`` extra and are imported only by ``ledger serve``
and ``ledger tokens``.
"""
