"""The composition root: the application factory (``server.app.create_app``) with the one
list of every domain's blueprints, the ``hotline`` command (``server.cli``) and the processes
it runs (web server, SLA scheduler, board publisher, call simulator).

It is named for what it is, the outermost layer that assembles and runs the server; ``app``
would read like the Flask object itself, which every test and view also calls ``app``.
Nothing imports it but its own entry point."""
