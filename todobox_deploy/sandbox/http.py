"""The one HTTP probe the sandbox (and its tests) use to see how the demo app answers."""

from __future__ import annotations

import urllib.error
import urllib.request


def http_status(url: str, timeout: float = 5.0) -> int:
    """The HTTP status of a GET, errors included; raises OSError when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
