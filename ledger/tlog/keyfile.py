"""Key files: one signer key or verifier key string per file, as signed-note defines them.

``ledger keys generate NAME --out DIR`` writes ``DIR/<file>.key`` (mode 0600, the signer key) and
``DIR/<file>.vkey`` (the verifier key, public). ``<file>`` is the key name made safe for a file
name: every character other than letters, digits, ``.``, ``-`` and ``_`` becomes ``_`` (a name
may contain ``/``: ``ledger.example.com/audit`` → ``ledger.example.com_audit``). Existing files
are never overwritten. A signer key file that its group or others may read is refused when
loaded: such a key must be considered disclosed.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from .errors import FormatError, KeyFileError
from .note import Signer, Verifier, generate_signer, parse_signer_key, parse_verifier_key

MAX_KEY_FILE_BYTES = 4096


def safe_file_name(name: str) -> str:
    """The file name stem for key ``name``: unsafe characters become '_', no leading dot."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".")
    return stem or "key"


def write_key_pair(name: str, out_dir: str | Path, *, cosigner: bool = False) -> tuple[Path, Path, Signer]:
    """Generate a key and write ``<file>.key`` (0600) and ``<file>.vkey``; returns both paths."""
    signer = generate_signer(name, cosigner=cosigner)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = safe_file_name(name)
    key_path, vkey_path = out / f"{stem}.key", out / f"{stem}.vkey"
    for path in (key_path, vkey_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists: refusing to overwrite a key (move it away first)")
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask says
            f.write(signer.skey + "\n")
        with open(vkey_path, "x", encoding="utf-8") as f:
            f.write(signer.verifier().vkey + "\n")
    except OSError as err:
        raise KeyFileError(f"cannot write the key files in {out}: {err}") from err
    return key_path, vkey_path, signer


def _read_one_line(path: Path, what: str) -> str:
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE_BYTES + 1)
    except OSError as err:
        raise KeyFileError(f"cannot read {what} file {path}: {err.strerror or err}") from err
    if len(data) > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{what} file {path} is larger than {MAX_KEY_FILE_BYTES} bytes: not a key file")
    try:
        text = data.decode("ascii" if what == "signer key" else "utf-8")
    except UnicodeDecodeError:
        raise KeyFileError(f"{what} file {path} is not text") from None
    lines = text.splitlines()
    if len(lines) != 1 or not lines[0].strip():
        raise KeyFileError(f"{what} file {path} must hold exactly one line, found {len(lines)}")
    return lines[0].strip()


def load_signer(path: str | Path, *, cosigner: bool = False) -> Signer:
    """Read a signer key file; refused if group or others may read or write it."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as err:
        raise KeyFileError(f"cannot read signer key file {path}: {err.strerror or err}") from err
    if not stat.S_ISREG(mode):
        raise KeyFileError(f"signer key file {path} is not a regular file")
    if mode & 0o077:
        raise KeyFileError(f"signer key file {path} has mode {stat.S_IMODE(mode):04o}: group or others may "
                           f"access it; run `chmod 600 {path}` if the key was never exposed, or make a new key")
    line = _read_one_line(path, "signer key")
    try:
        return parse_signer_key(line, cosigner=cosigner)
    except FormatError as err:
        raise KeyFileError(f"{path}: {err}") from None


def load_verifier(path: str | Path) -> Verifier:
    """Read a verifier key file (one line ``<name>+<hex id>+<base64>``)."""
    path = Path(path)
    line = _read_one_line(path, "verifier key")
    try:
        return parse_verifier_key(line)
    except FormatError as err:
        raise KeyFileError(f"{path}: {err}") from None


def load_cosigner(path: str | Path) -> Signer:
    """Read a witness's signer key: a signer key file whose ``.vkey`` beside it has type 04.

    The signer key string is the same for a log key and a witness key (signed-note stores only the
    Ed25519 seed); the verifier key written beside it by ``ledger keys generate --cosigner`` is what
    says the key was made to cosign. A key whose vkey has type 01 is a log key: one key must not
    sign two kinds of statement, so it is refused.
    """
    from .note import COSIGNATURE_V1

    path = Path(path)
    vkey_path = path.with_suffix(".vkey") if path.suffix == ".key" else Path(f"{path}.vkey")
    signer = load_signer(path, cosigner=True)
    if not vkey_path.exists():
        raise KeyFileError(f"cannot tell whether {path} is a witness key: its verifier key {vkey_path} is "
                           "missing (a witness key is made with `ledger keys generate NAME --cosigner --out DIR`, "
                           "which writes both files)")
    verifier = load_verifier(vkey_path)
    if verifier.public_key != signer.verifier().public_key or verifier.name != signer.name:
        raise KeyFileError(f"{vkey_path} is not the verifier key of {path} (another name or key)")
    if verifier.sig_type != COSIGNATURE_V1:
        raise KeyFileError(f"{path} is a log signer key (its verifier key {vkey_path} has signature type "
                           f"{verifier.sig_type:02x}, Ed25519 checkpoint signatures), not a witness key: a "
                           "witness cosigns with a key of type 04; make one with "
                           "`ledger keys generate NAME --cosigner --out DIR`")
    return signer
