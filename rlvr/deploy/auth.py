"""Ray token authentication for clusters rlvr starts, and redaction of that token.

In: a directory to hold a per-cluster token. Out: environment variables that make Ray (this process
and every process it spawns) require the token. The token lives only in a 0600 file and in memory;
it must never be printed, logged, or written into a config or run directory.
"""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from pathlib import Path

TOKEN_FILE = "auth_token"
_BEARER = re.compile(
    r"(?i)(bearer\s+|x-ray-authorization:\s*|ray-authentication-token=)[A-Za-z0-9._~+/=-]{8,}"
)


def new_token_file(parent: str | Path | None = None) -> Path:
    """Create a private directory with a fresh random token file (dir 0700, file 0600)."""
    root = Path(tempfile.mkdtemp(prefix="rlvr-auth-", dir=str(parent) if parent else None))
    os.chmod(root, 0o700)
    path = root / TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32))
    return path


def token_env(token_file: Path) -> dict[str, str]:
    """Env that turns token auth on and points Ray at the file (never the token value itself)."""
    return {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token_file)}


def apply_env(env: dict[str, str]) -> None:
    """Set `env` in this process and make Ray's cached config and token loader see it."""
    os.environ.update(env)
    try:  # Ray caches the auth mode and the token at first use; refresh both.
        from ray._raylet import AuthenticationTokenLoader, Config  # type: ignore[attr-defined]

        Config.initialize("")
        AuthenticationTokenLoader.instance().reset_cache()
    except (ImportError, AttributeError):
        pass


def _active_tokens() -> list[str]:
    found = []
    if os.environ.get("RAY_AUTH_TOKEN"):
        found.append(os.environ["RAY_AUTH_TOKEN"])
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    if path and os.path.isfile(path):
        try:
            found.append(Path(path).read_text().strip())
        except OSError:
            pass
    return [t for t in found if len(t) >= 8]


def redact(text: str) -> str:
    """Replace the active Ray token (and anything shaped like a bearer credential) with <redacted>."""
    for tok in _active_tokens():
        text = text.replace(tok, "<redacted>")
    return _BEARER.sub(lambda m: m.group(1) + "<redacted>", text)
