"""Where the packaged ``sql/`` and ``migrations/`` folders are.

A built wheel carries them as ``agentcore/_data/{sql,migrations}``; a source
checkout (editable install, or tests run from the repository) has them at the
top of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """Return the folder ``name`` (``sql`` or ``migrations``) that ships with agentcore.

    Raises:
        FileNotFoundError: neither the wheel's copy nor the checkout's exists.
    """
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"agentcore's {name}/ folder is missing from this installation")
