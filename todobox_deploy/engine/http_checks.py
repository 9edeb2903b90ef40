"""The post-deploy HTTP checks, as a program run on the target with the app's own interpreter.

Shipped as source (``python -c SOURCE``), so it imports only the standard library and nothing of this
package. It reads a JSON spec on stdin (login passwords never appear in argv)::

    {"timeout": 10, "checks": [{"name": "...", "url": "...", "method": "GET", "form": [["k", "v"]],
      "expect_status": 200, "login": null | {"url": "...", "form": [["k", "v"]], "csrf_field": "..."}}]}

and prints one JSON object per check as it finishes: ``status`` is the HTTP status the URL answered
(redirects are not followed, so a bounce to a login page is a 302, not the login page's 200), or null with
``error`` when nothing answered. The login step GETs the form, takes the hidden input named
``csrf_field``, POSTs the login form with it and the session cookie, then runs the check in that session.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from html.parser import HTMLParser
from typing import Any

BODY_LIMIT = 1 << 20  # bytes read from a response
PREVIEW = 200  # characters of the body shown for a check that did not pass


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx becomes an HTTPError carrying the real status


class _InputFinder(HTMLParser):
    """Finds the first ``<input name=NAME>`` of a page and keeps its value."""

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name = name
        self.value: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "input" and self.value is None:
            found = dict(attrs)
            if found.get("name") == self.name:
                self.value = found.get("value") or ""


def find_input(html: str, name: str) -> str | None:
    """The value of the first input named ``name`` in ``html`` (None when there is none)."""
    finder = _InputFinder(name)
    finder.feed(html)
    finder.close()
    return finder.value


def _preview(body: bytes) -> str:
    return " ".join(body.decode("utf-8", "replace").split())[:PREVIEW]


def _request(
    opener: urllib.request.OpenerDirector,
    url: str,
    method: str,
    form: list[list[str]],
    timeout: float,
    referer: str | None = None,
) -> tuple[int, str | None, bytes]:
    """(status, Location header, body) of one request; raises OSError/ValueError when nothing answers."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError(f"not an http(s) URL: {url!r}")
    data = None
    if form:
        encoded = urllib.parse.urlencode([(k, v) for k, v in form])
        if method in ("GET", "HEAD"):
            url += ("&" if "?" in url else "?") + encoded
        else:
            data = encoded.encode("utf-8")
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("User-Agent", "todobox-deploy-check")
    if data is not None:
        req.add_header("Content-Type", "application/x-www-form-urlencoded")
    if referer:
        req.add_header("Referer", referer)
    try:
        with opener.open(req, timeout=timeout) as resp:
            return int(resp.status), resp.headers.get("Location"), resp.read(BODY_LIMIT)
    except urllib.error.HTTPError as exc:
        body = exc.read(BODY_LIMIT) if exc.fp is not None else b""
        return int(exc.code), exc.headers.get("Location") if exc.headers else None, body


def _login(opener: urllib.request.OpenerDirector, login: dict[str, Any], timeout: float) -> dict[str, Any]:
    """GET the login page, take the CSRF token, POST the login form; what happened, or an error."""
    url = login["url"]
    status, _, body = _request(opener, url, "GET", [], timeout)
    out: dict[str, Any] = {"url": url, "form_status": status}
    if status != 200:
        out["error"] = f"the login page answered {status}"
        return out
    form = [list(pair) for pair in login.get("form", [])]
    field = login.get("csrf_field")
    if field:
        token = find_input(body.decode("utf-8", "replace"), field)
        if token is None:
            out["error"] = f"the login page has no input named {field!r}"
            return out
        out["csrf"] = "found"
        form.append([field, token])
    status, location, body = _request(opener, url, "POST", form, timeout, referer=url)
    out.update(status=status, location=location)
    if status >= 400:
        out["error"] = f"the login answered {status}"
        out["body"] = _preview(body)
    return out


def run_check(check: dict[str, Any], timeout: float) -> dict[str, Any]:
    """One check in its own cookie session: the login first when asked, then the request itself."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect())
    method = str(check.get("method") or "GET").upper()
    expect = int(check.get("expect_status", 200))
    result: dict[str, Any] = {
        "name": check.get("name") or check["url"],
        "url": check["url"],
        "method": method,
        "expect": expect,
        "status": None,
    }
    try:
        if check.get("login"):
            result["login"] = _login(opener, check["login"], timeout)
            if "error" in result["login"]:
                result["error"] = "login: " + result["login"]["error"]
                return result
        status, location, body = _request(opener, check["url"], method, check.get("form", []), timeout)
    except (OSError, ValueError, http.client.HTTPException) as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        return result
    result.update(status=status, location=location)
    if status != expect:
        result["body"] = _preview(body)
    return result


def main() -> None:
    spec = json.load(sys.stdin)
    timeout = float(spec.get("timeout", 10))
    for check in spec["checks"]:
        print(json.dumps(run_check(check, timeout)), flush=True)


if __name__ == "__main__":
    main()
