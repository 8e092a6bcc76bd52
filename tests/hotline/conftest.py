"""Fixtures of the hotline package's tests: ``gateway``, a local HTTP server standing in for
the SMS gateway, the WeChat Work robot and WeChat's template message API."""

from tests.hotline.gateway import gateway  # noqa: F401 — a fixture, offered to the modules
