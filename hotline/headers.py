"""The security headers every response carries: pages, the JSON API, static files and errors.

One ``after_request`` hook rather than Flask-Talisman: Talisman's defaults force HTTPS
(redirects) and ``Secure`` session cookies, which the plain-HTTP demo must not do, so we would
turn most of it off and configure the rest; its last release is from 2023; and what is left is
the handful of fixed headers below, which fit on one screen and are tested
(``tests/hotline/test_headers.py``, and every browser test fails on a CSP violation).

- ``Content-Security-Policy`` (``POLICY``): scripts and styles only from files on this site —
  no inline ``<script>``, ``<style>``, ``style="…"`` or ``on…=`` handlers in any template
  (``<script type="application/json">`` data blocks are not run and need nothing).
  ``connect-src 'self'`` covers the pages' ``fetch`` calls and the boards' Socket.IO
  WebSocket: since CSP Level 3 ``'self'`` also matches ``ws:``/``wss:`` on the page's own
  host and port (Chromium since 71, Safari since 16, Firefox), so no ``ws:``/``wss:``
  wildcard (which would allow any host) is needed; the browser tests check the board's
  WebSocket. Scripts may still set styles through the CSSOM (``element.style.x = …``, as
  ECharts does); the board's chart draws its tooltip on the canvas (``renderMode:
  "richText"``) rather than as HTML with ``style`` attributes. ``frame-ancestors 'none'``:
  no page may be framed (clickjacking).
- ``X-Frame-Options: DENY``: the same for browsers without ``frame-ancestors``.
- ``Referrer-Policy: same-origin``: links within the site keep the full referrer; nothing —
  not even the origin — goes to another site. Ticket numbers and query arguments are in our
  URLs, and an internal government system has no reason to tell anyone outside where a
  click came from (``strict-origin-when-cross-origin`` would still send the origin, the
  intranet host name included). No page links or loads anything from another site today.
- ``X-Content-Type-Options: nosniff``: JSON is data; a browser must never sniff it (or an
  upload) into HTML and run what a citizen typed.
- ``Strict-Transport-Security`` only when the request came over HTTPS
  (``request.is_secure``): browsers ignore it over plain HTTP, and the demo runs on HTTP.
  Behind a TLS-terminating proxy ``request.is_secure`` is true only if the proxy passes
  ``X-Forwarded-Proto`` and the application is wrapped in Werkzeug's ``ProxyFix``, which it
  is not by default; otherwise the proxy sends HSTS itself (README, production section).

A view that sets one of these headers itself keeps its own value (the photo download sends
``default-src 'none'; sandbox``).
"""

from flask import request

#: The Content-Security-Policy of every page.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

#: Sent on every response (unless the view set the header itself).
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
}

#: Sent only on responses to HTTPS requests: a year, subdomains included.
HSTS = "max-age=31536000; includeSubDomains"


def init_app(app):
    app.after_request(add_security_headers)


def add_security_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
    return response
