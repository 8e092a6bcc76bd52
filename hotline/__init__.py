"""12345 hotline: intake, tickets, organisation and areas, users, API."""

__all__ = ["create_app"]


def __getattr__(name):
    # Imported on first use, so that ``import dispatch.operations`` (which needs
    # ``hotline.models``) does not pull in the app and, through it, ``dispatch.api``
    # while ``dispatch.operations`` is still half-initialised.
    if name == "create_app":
        from hotline.app import create_app

        return create_app
    raise AttributeError(f"module 'hotline' has no attribute {name!r}")
