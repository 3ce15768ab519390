"""The connection details of a running `consent-ledger up`, for commands run beside it.

`up` writes LEDGER_DATA_DIR/session.env (mode 0600) while it runs (servers, topic, the secrets
file, the producer setting; never a key itself, but the embedded PostgreSQL's URL carries its
password) and removes it on stop. Operator commands such as
`import` read it when neither KAFKA_BOOTSTRAP_SERVERS nor DATABASE_URL is set, so that they
work against `make up` with no set-up; variables set in the environment still win.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from services.config import Settings

FILE_NAME: Final = "session.env"
_KEYS: Final = (
    "KAFKA_BOOTSTRAP_SERVERS",
    "DATABASE_URL",
    "LEDGER_KAFKA_IDEMPOTENCE",
    "LEDGER_TOPIC",
    "LEDGER_CHECKS_TOPIC",
    "LEDGER_CHECKPOINTS_TOPIC",
    "LEDGER_SECRETS_FILE",
    "LEDGER_HOST",
    "LEDGER_PORT",
)


def session_file(data_dir: str | Path) -> Path:
    return Path(data_dir).resolve() / FILE_NAME


def write_session(settings: Settings) -> Path:
    env = settings.as_environment()
    path = session_file(settings.data_dir)
    lines = [f"{key}={env[key]}" for key in _KEYS if env.get(key)]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write("# written by a running `consent-ledger up`; removed when it stops\n")
        out.write("\n".join(lines) + "\n")
    return path


def remove_session(settings: Settings) -> None:
    session_file(settings.data_dir).unlink(missing_ok=True)


def environment_with_session(env: Mapping[str, str]) -> tuple[dict[str, str], Path | None]:
    """`env`, completed from a running `up`'s session file when it names no servers."""
    out = dict(env)
    if out.get("KAFKA_BOOTSTRAP_SERVERS") or out.get("DATABASE_URL"):
        return out, None
    path = session_file(out.get("LEDGER_DATA_DIR") or ".ledger")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return out, None
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key in _KEYS and not out.get(key):
            out[key] = value
    return out, path
