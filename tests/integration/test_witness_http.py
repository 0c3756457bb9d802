"""`ledger witness serve` as a real process on loopback, spoken to in raw HTTP as tlog-witness.md writes it.

One witness process per module; each test uses its own origin under the log key's name, so the
tests do not see each other's state.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import random
import socket
import subprocess
import sys
import threading
from itertools import count

import pytest
import tlog_fixtures as fx
from witnesskit import SyntheticLog, get, post, start_witness, write_key_files

from ledger.tlog import note
from ledger.tlog.witness import MAX_REQUEST_BYTES

_names = count()


@pytest.fixture(scope="module")
def witness(tmp_path_factory):
    w = start_witness(tmp_path_factory.mktemp("witness"))
    yield w
    w.stop()
    assert "Traceback" not in w.log_text()


@pytest.fixture
def log():
    return SyntheticLog(f"{fx.LOG_ORIGIN}/t{next(_names)}/0")


def add(witness, body: bytes, **headers):
    return post(witness.url + "/add-checkpoint", body, headers)


def cosignatures(signed_checkpoint: str, body: bytes) -> list[note.Verified]:
    """What a log does with a 200 body (the spec's suggestion): append it, verify with the witness key."""
    assert body.startswith("— ".encode()) and body.endswith(b"\n")
    return note.verified_signatures(note.parse_note(signed_checkpoint + body.decode()), [fx.WITNESS_KEY.verifier()])


def test_first_checkpoint_then_growth_is_cosigned(witness, log):
    """Old 0 with no proof, then a consistent growth with its proof: 200 and a timestamped v1 cosignature each."""
    for old, size in ((0, 10), (10, 200), (200, 200)):
        status, ctype, body = add(witness, log.request(old, size))
        assert status == 200, body
        assert ctype.startswith("text/plain")
        [cosig] = cosignatures(log.checkpoint(size), body)
        assert cosig.timestamp > 1_700_000_000


def test_409_answers_the_latest_size_as_text_x_tlog_size(witness, log):
    """A wrong old size is 409 with Content-Type text/x.tlog.size and the body '<size>\\n'."""
    assert add(witness, log.request(0, 17))[0] == 200
    status, ctype, body = add(witness, log.request(5, 40))
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"17\n")
    status, ctype, body = add(witness, log.request(0, 40))  # "old 0" to learn the size, as the spec allows
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"17\n")
    assert add(witness, log.request(17, 40))[0] == 200


def test_unknown_origin_is_404(witness):
    """A checkpoint of an origin no trusted key covers is 404, even if validly signed by that other key."""
    other = SyntheticLog("elsewhere.example/log")
    stranger = fx.fixed_signer("elsewhere.example/log", 9)
    assert add(witness, other.request(0, 5, key=stranger))[0] == 404
    # A name that only starts like the key's name is not below it.
    assert add(witness, SyntheticLog(fx.LOG_ORIGIN + "x/t/0").request(0, 5))[0] == 404


def test_403_without_a_trusted_signature_or_with_a_bad_one(witness, log):
    """Signed only by an impostor key of the log's name: 403; a trusted key's signature that fails: 403."""
    assert add(witness, log.request(0, 5, key=fx.IMPOSTOR_KEY))[0] == 403
    body = log.request(0, 5).decode()
    sig = body.rsplit(" ", 1)[1]
    raw = bytearray(__import__("base64").b64decode(sig))
    raw[10] ^= 1
    forged = body[: -len(sig)] + __import__("base64").b64encode(bytes(raw)).decode() + "\n"
    status, _, reason = add(witness, forged.encode())
    assert status == 403 and b"does not verify" in reason


@pytest.mark.parametrize("body, reason", [
    (b"", b"no empty line"),
    (b"old 0\n", b"no empty line"),
    (b"new 0\n\nx\n", b"'old <size>'"),
    (b"old 01\n\nx\n", b"leading zeroes"),
    (b"old -1\n\nx\n", b"not a decimal"),
    (b"old 0\nnot base64!\n\nx\n", b"proof line line 2"),
    (b"old 0\n" + b"AAAA\n" + b"\nx\n", b"not 32"),
    (b"old 0\n\n\xff\xfe\n", b"UTF-8"),
    (b"old 0\n\nledger.example.com/audit/t/0\n5\n\n", b"note"),
    (b"old 0\n\nledger.example.com/audit/t/0\nfive\nAAAA\n\n\xe2\x80\x94 x AAAAAAA=\n", b"checkpoint size line 4"),
])
def test_malformed_bodies_are_400_naming_the_problem(witness, body, reason):
    """Each malformed body is 400, plain text naming what is wrong; never a traceback."""
    status, ctype, answer = add(witness, body)
    assert status == 400 and ctype.startswith("text/plain"), answer
    assert reason in answer and b"Traceback" not in answer


def test_old_above_the_checkpoint_size_is_400(witness, log):
    """old > size is 400 (the spec's wording), before any state is looked at."""
    status, _, answer = add(witness, log.request(30, 20, proof=[]))
    assert status == 400 and b"above the checkpoint size" in answer


def test_422_cases(witness, log):
    """Size 0 with another root, a proof with old 0, and a proof that does not verify are each 422."""
    status, _, _ = add(witness, log.request(0, 0, root=log.reader.root(3)))
    assert status == 422
    assert add(witness, log.request(0, 8, proof=[log.reader.root(1)]))[0] == 422
    assert add(witness, log.request(0, 8))[0] == 200
    wrong = log.reader.consistency_proof(8, 20)
    wrong[0] = bytes(32)
    status, _, answer = add(witness, log.request(8, 20, proof=wrong))
    assert status == 422 and b"consistency proof does not verify" in answer
    assert add(witness, log.request(8, 20))[0] == 200  # the refusal did not move the witness


def test_63_proof_lines_are_read_64_are_400(witness, log):
    """The spec's bound: 63 proof lines are parsed (then fail as a proof, 422); 64 are refused as 400."""
    assert add(witness, log.request(0, 8))[0] == 200
    filler = [bytes([i]) * 32 for i in range(64)]
    status, _, answer = add(witness, log.request(8, 20, proof=filler[:63]))
    assert status == 422, answer
    status, _, answer = add(witness, log.request(8, 20, proof=filler))
    assert status == 400 and b"64 consistency proof lines" in answer


def test_a_fork_is_refused_and_kept_as_evidence(witness, log, tmp_path):
    """Same size, another root, signed by the log: 422, and `ledger witness evidence` shows the forked note."""
    assert add(witness, log.request(0, 50))[0] == 200
    forked = SyntheticLog(log.origin, salt=b"fork")
    status, _, answer = add(witness, forked.request(50, 50))
    assert status == 422 and b"another root" in answer
    smaller = forked.request(50, 60, proof=forked.reader.consistency_proof(50, 60))
    assert add(witness, smaller)[0] == 422  # a growth of the forked tree does not reach our root either
    shown = subprocess.run([sys.executable, "-m", "ledger", "witness", "evidence", "--state", str(witness.state)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0, shown.stderr
    rows = [json.loads(line) for line in shown.stdout.splitlines()]
    mine = [r for r in rows if r["origin"] == log.origin]
    assert {r["reason"].split(":")[0] for r in mine} == {"same size, different root (fork)", "inconsistent"}
    assert all(r["status"] == 422 and r["stored_size"] == 50 for r in mine)
    assert forked.checkpoint(50) in [r["checkpoint"] for r in mine]
    # The monitors' view is still the cosigned one.
    status, _, body = get(f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint")
    assert status == 200 and body.decode().startswith(log.checkpoint(50).split("\n\n")[0])


def test_monitors_get_the_latest_cosigned_checkpoint(witness, log):
    """GET /<sha256 hex of origin>/checkpoint: the log's signature and the witness's cosignature; 404 before."""
    url = f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint"
    assert get(url)[0] == 404
    assert add(witness, log.request(0, 33))[0] == 200
    status, ctype, body = get(url)
    assert status == 200 and ctype.startswith("text/plain")
    parsed = note.parse_note(body.decode())
    assert note.verified_signatures(parsed, [fx.LOG_KEY.verifier()])
    assert note.verified_signatures(parsed, [fx.WITNESS_KEY.verifier()])
    assert parsed.text == log.checkpoint(33).split("\n\n")[0] + "\n"
    assert get(url.upper().replace("HTTP://", "http://").replace("/CHECKPOINT", "/checkpoint"))[0] == 404


def test_concurrent_sizes_never_roll_back(witness, log):
    """Two requests from the same old size to two new sizes, at once: one 200, the other 409 naming the winner.

    Repeated, so that the two really overlap; the stored size only ever grows (the spec's race note).
    """
    assert add(witness, log.request(0, 2))[0] == 200
    held = 2
    for round_ in range(20):
        small, large = held + 1 + round_ % 3, held + 5 + round_ % 7
        bodies = [log.request(held, small), log.request(held, large)]
        answers = [None, None]
        barrier = threading.Barrier(2)

        def send(i, barrier=barrier, answers=answers, bodies=bodies):
            barrier.wait()
            answers[i] = add(witness, bodies[i])

        threads = [threading.Thread(target=send, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        statuses = sorted(a[0] for a in answers)
        assert statuses == [200, 409], answers
        winner = small if answers[0][0] == 200 else large
        loser = answers[1] if answers[0][0] == 200 else answers[0]
        assert loser[1:] == ("text/x.tlog.size", f"{winner}\n".encode())
        held = winner
    url = f"{witness.url}/{hashlib.sha256(log.origin.encode()).hexdigest()}/checkpoint"
    assert get(url)[2].decode().split("\n")[1] == str(held)


def _read_until_closed(s: socket.socket) -> bytes:
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return data


def test_request_size_is_bounded(witness, log):
    """A body above 64 KiB is 413, whether announced by Content-Length or sent in chunks."""
    port = int(witness.url.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/add-checkpoint", body=iter([b"old 0\n"] + [b"A" * 8192] * 10),
                     encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        assert conn.getresponse().status == 413
    finally:
        conn.close()
    # Announced, one byte above the limit, not sent: answered at once from the header alone.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (MAX_REQUEST_BYTES + 1))
        answer = _read_until_closed(s)
    assert answer.startswith(b"HTTP/1.1 413") and b"65537 bytes is above the 65536-byte limit" in answer
    # Exactly at the limit is read and judged on its content.
    status, _, answer = add(witness, log.request(0, 5) + b"x" * (MAX_REQUEST_BYTES - len(log.request(0, 5))))
    assert status == 400, answer


def test_other_paths_and_methods(witness):
    """GET on add-checkpoint is 405 with Allow: POST; an unknown path is 404 naming the routes."""
    conn = http.client.HTTPConnection("127.0.0.1", int(witness.url.rsplit(":", 1)[1]), timeout=10)
    try:
        conn.request("GET", "/add-checkpoint")
        response = conn.getresponse()
        assert response.status == 405 and response.getheader("Allow") == "POST"
        response.read()
        conn.request("POST", "/" + "0" * 64 + "/checkpoint", body=b"")
        response = conn.getresponse()
        assert response.status == 405 and "GET" in response.getheader("Allow")
        response.read()
    finally:
        conn.close()
    status, _, body = get(witness.url + "/nope")
    assert status == 404 and b"POST /add-checkpoint" in body


def test_garbage_never_gets_a_traceback(witness, log):
    """Random bytes, truncated and bit-flipped requests: a 4xx answer in plain text every time."""
    rng = random.Random(14)
    good = log.request(0, 9)
    bodies = [rng.randbytes(rng.randrange(0, 400)) for _ in range(30)]
    bodies += [good[: rng.randrange(len(good))] for _ in range(15)]
    for _ in range(15):
        flipped = bytearray(good)
        flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        bodies.append(bytes(flipped))
    for body in bodies:
        status, ctype, answer = add(witness, body)
        assert status in (200, 400, 403, 404, 409, 422) and ctype.startswith("text/"), (body, answer)
        assert b"Traceback" not in answer


def test_a_log_key_is_refused_as_the_witness_key(tmp_path):
    """--key of a log signer key (its vkey of type 01) fails to start with what to do; so does a missing vkey."""
    key, vkey = write_key_files(fx.LOG_KEY, tmp_path, "log")
    base = [sys.executable, "-m", "ledger", "witness", "serve", "--key", str(key), "--log-vkey", str(vkey),
            "--state", str(tmp_path / "s.db"), "--listen", "127.0.0.1:1"]
    run = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "is a log signer key" in run.stderr and "--cosigner" in run.stderr
    assert "Traceback" not in run.stderr
    wkey, wvkey = write_key_files(fx.WITNESS_KEY, tmp_path, "w")
    wvkey.unlink()
    base[base.index(str(key))] = str(wkey)
    run = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "verifier key" in run.stderr and "is missing" in run.stderr
    wkey2, wvkey2 = write_key_files(fx.WITNESS_KEY, tmp_path, "w2")
    base[base.index(str(wkey))] = str(wkey2)
    base[base.index(str(vkey))] = str(wvkey2)  # a witness vkey given as the log's
    run = subprocess.run(base, capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "--log-vkey" in run.stderr and "type 01" in run.stderr


class _InProcess:
    """The witness app under real uvicorn in a thread, for faults a separate process cannot be put in."""

    def __init__(self, app):
        import time

        import uvicorn
        from httpkit import free_port

        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off",
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


def test_an_internal_error_is_a_plain_500_and_logged(tmp_path, caplog):
    """The app under real uvicorn with a broken state file: 500 in plain text, the traceback only in the log."""
    from ledger.http.witness_app import WitnessApp
    from ledger.tlog.witness import Witness

    broken = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "state.db")
    broken.close()  # every use of the state now raises inside the witness
    served = _InProcess(WitnessApp(broken))
    try:
        with caplog.at_level("ERROR", logger="ledger.witness"):
            status, ctype, body = get(f"{served.url}/{'0' * 64}/checkpoint")
            assert (status, ctype) == (500, "text/plain; charset=utf-8") and b"Traceback" not in body
            request = SyntheticLog(f"{fx.LOG_ORIGIN}/x/0").request(0, 3)
            status, ctype, body = post(served.url + "/add-checkpoint", request)
            assert status == 500 and ctype.startswith("text/plain") and b"Traceback" not in body
        assert "internal error answering GET" in caplog.text
    finally:
        served.close()


def test_a_body_that_does_not_arrive_is_408(tmp_path):
    """A client that announces a body and stalls is answered 408 once the body time is up (0.5 s here)."""
    from ledger.http.witness_app import WitnessApp
    from ledger.tlog.witness import Witness

    witness = Witness([fx.WITNESS_KEY], [fx.LOG_KEY.verifier()], tmp_path / "state.db")
    served = _InProcess(WitnessApp(witness, body_seconds=0.5))
    try:
        with socket.create_connection(("127.0.0.1", int(served.url.rsplit(":", 1)[1])), timeout=10) as s:
            s.sendall(b"POST /add-checkpoint HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nold 0\n")
            answer = _read_until_closed(s)
        assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 0.5 s" in answer
    finally:
        served.close()
        witness.close()


def test_tls_with_certfile_and_keyfile(tmp_path):
    """--certfile/--keyfile serve HTTPS; a client trusting the certificate gets the same protocol."""
    import ssl

    from witnesskit import self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(cafile=str(cert))
    w = start_witness(tmp_path, extra=("--certfile", str(cert), "--keyfile", str(key)), context=context)
    try:
        assert w.url.startswith("https://127.0.0.1:")
        log = SyntheticLog(f"{fx.LOG_ORIGIN}/tls/0")
        status, _, body = post(w.url + "/add-checkpoint", log.request(0, 4), context=context)
        assert status == 200 and cosignatures(log.checkpoint(4), body)
    finally:
        w.stop()


def test_witness_commands_have_help_with_an_example(capsys):
    """witness, witness serve and witness evidence document themselves with an example; serve lists its routes."""
    from ledger.cli import main

    for argv, example in ((["witness", "--help"], "example:\n  ledger witness serve"),
                          (["witness", "serve", "--help"], "examples:\n  ledger keys generate"),
                          (["witness", "evidence", "--help"], "example:\n  ledger witness evidence"),
                          (["checkpoint", "--help"], "--min-witnesses K")):
        with pytest.raises(SystemExit):
            main(argv)
        out = capsys.readouterr().out
        assert example in out
    main_help = subprocess.run([sys.executable, "-m", "ledger", "witness", "serve", "--help"], capture_output=True,
                               text=True, timeout=60, check=False).stdout
    assert "GET  /<hex SHA-256 of the origin>/checkpoint" in main_help


BLOCK = "import sys\nfor m in ('fastapi', 'uvicorn', 'jwt', 'jinja2', 'starlette'): sys.modules[m] = None\n"


def test_witness_serve_without_uvicorn_is_one_clean_error(tmp_path):
    """The CLI (and `witness evidence`) start without the http extra; `witness serve` names what to install."""
    key, _ = write_key_files(fx.WITNESS_KEY, tmp_path, "w")
    _, vkey = write_key_files(fx.LOG_KEY, tmp_path, "log")
    argv = ["witness", "serve", "--key", str(key), "--log-vkey", str(vkey), "--state", str(tmp_path / "s.db"),
            "--listen", "127.0.0.1:1"]
    code = BLOCK + f"from ledger.cli import main\nsys.exit(main({argv!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "pip install 'ledger[http]'" in run.stderr and "Traceback" not in run.stderr
    argv = ["witness", "evidence", "--state", str(tmp_path / "missing.db")]
    code = BLOCK + f"from ledger.cli import main\nsys.exit(main({argv!r}))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1 and "no witness state file" in run.stderr
