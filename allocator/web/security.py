"""What the web app refuses: paths outside the archive, requests without the token, wild CORS.

- An artifact path is served only when it resolves (symlinks followed) to a file inside its
  folder; ``..`` segments, absolute paths and backslashes are refused before anything is opened.
- Binding beyond loopback needs ``ALLOCATOR_API_TOKEN``; with a token, every request carries
  ``Authorization: Bearer <token>``, compared in constant time.
- CORS stays off unless ``ALLOCATOR_CORS_ORIGINS`` lists explicit origins; ``*`` is refused.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from allocator.exceptions import SettingsError

TOKEN_VARIABLE = "ALLOCATOR_API_TOKEN"
CORS_VARIABLE = "ALLOCATOR_CORS_ORIGINS"
LOOPBACK_NAMES = ("localhost", "ip6-localhost")


@dataclass(frozen=True)
class WebSettings:
    """The web app's own settings: the bearer token and the allowed CORS origins."""

    api_token: str | None = field(default=None, repr=False)
    cors_origins: tuple[str, ...] = ()


def _cors_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.replace(",", " ").split() if o.strip())
    for origin in origins:
        if "*" in origin:
            raise SettingsError(
                f"{CORS_VARIABLE}={raw!r}: '*' is not allowed; list the explicit origins, "
                "e.g. https://dash.example.com,http://localhost:3000"
            )
        if not origin.startswith(("http://", "https://")):
            raise SettingsError(
                f"{CORS_VARIABLE}: {origin!r} is not an origin; use scheme://host[:port], "
                "e.g. https://dash.example.com"
            )
    return origins


def read_web_settings(environ: Mapping[str, str] | None = None) -> WebSettings:
    """``ALLOCATOR_API_TOKEN`` and ``ALLOCATOR_CORS_ORIGINS`` from ``environ`` (default: os)."""
    env = os.environ if environ is None else environ
    token = (env.get(TOKEN_VARIABLE) or "").strip() or None
    return WebSettings(api_token=token, cors_origins=_cors_origins(env.get(CORS_VARIABLE) or ""))


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_token_for(host: str, web: WebSettings) -> None:
    """Refuse to serve beyond loopback without a token (a one-line error naming the variable)."""
    if not is_loopback(host) and not web.api_token:
        raise SettingsError(
            f"{TOKEN_VARIABLE} is not set: binding to {host} (not loopback) needs a token; "
            f"set {TOKEN_VARIABLE} or bind to 127.0.0.1"
        )


def bearer_matches(authorization: str | None, token: str) -> bool:
    """True when ``authorization`` is ``Bearer <token>`` (compared in constant time)."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())


class PathRefused(ValueError):
    """A requested artifact path points outside its folder."""


def resolve_artifact(root: Path, relative: str) -> Path:
    """The file ``relative`` inside ``root``, symlinks resolved.

    Raises :class:`PathRefused` for ``..``, absolute paths, backslashes, NUL bytes and anything
    that resolves outside ``root``; :class:`FileNotFoundError` when it is not a file.
    """
    if not relative or "\x00" in relative or "\\" in relative:
        raise PathRefused(relative)
    pure = PurePosixPath(relative)
    if pure.is_absolute() or any(part in ("..", "~") for part in pure.parts):
        raise PathRefused(relative)
    base = Path(root).resolve()
    target = (base / pure).resolve()
    if not target.is_relative_to(base):
        raise PathRefused(relative)
    if not target.is_file():
        raise FileNotFoundError(relative)
    return target


def artifact_url(path: str | None, folders: Mapping[str, Path]) -> str | None:
    """The app's URL of an archived file (``/artifacts/<area>/...``), or None when ``path`` is
    empty, missing, or lies outside every folder of ``folders`` (area name to folder)."""
    if not path:
        return None
    target = Path(path)
    if not target.is_file():
        return None
    target = target.resolve()
    for area, folder in folders.items():
        base = Path(folder).resolve()
        if target.is_relative_to(base):
            return f"/artifacts/{area}/{quote(target.relative_to(base).as_posix())}"
    return None
