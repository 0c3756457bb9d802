"""The read-only CLI starts without the http extra; `ledger serve` without it says what to install."""

from __future__ import annotations

import subprocess
import sys

BLOCK = "import sys\nfor m in ('fastapi', 'uvicorn', 'jwt', 'jinja2', 'starlette'): sys.modules[m] = None\n"


def run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, timeout=60)


def test_the_read_only_cli_starts_without_the_http_extra():
    """`ledger who-saw --help` works with FastAPI, uvicorn, PyJWT and Jinja2 unimportable."""
    r = run("from ledger.cli import main\nsys.exit(main(['who-saw', '--help']))")
    assert r.returncode == 0 and "who-saw" in r.stdout, r.stderr


def test_serve_without_the_http_extra_is_one_clean_error(tmp_path):
    """No traceback: one line naming the extra to install."""
    r = run(f"from ledger.cli import main\nsys.exit(main(['serve', '--db', '{tmp_path}/x.db', '--token-key', 'k.pub']))")
    assert r.returncode == 1 and "pip install 'ledger[http]'" in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_serve_and_tokens_have_help_with_an_example(capsys):
    """Every command documents itself with an example, like the others."""
    import pytest

    from ledger.cli import main

    for argv, example in ((["serve", "--help"], "example:\n  ledger serve"),
                          (["tokens", "--help"], "example:\n  ledger tokens keygen"),
                          (["tokens", "issue", "--help"], "ledger tokens issue")):
        with pytest.raises(SystemExit):
            main(argv)
        assert example in capsys.readouterr().out
