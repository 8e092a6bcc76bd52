"""12345 hotline: intake, tickets, organisation and areas, users, API."""

from hotline.app import create_app

__all__ = ["create_app"]
