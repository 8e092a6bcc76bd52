"""12345 hotline, the core every other domain stands on: configuration, database, models,
enumerations, errors, authentication and sessions, audit, events and notifications, the
classifier service at intake, attachments, reference data, the JSON API's base and the page
infrastructure.

It imports no other domain; the application is assembled in ``server``."""
