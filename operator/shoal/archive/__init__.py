"""Run history and job logs in PostgreSQL, so both outlive pods and Workflow objects.

`schema` migrates the database, `sink` streams log lines into it without ever
blocking the runner, `store` records runs and nodes, `reader` reads them back, `objects`
shows an archived run as the live views do, `search` pages through runs for the API.
Everything here needs the `operator` extra (asyncpg); worker images never import it.
`writer` is the bounded background writer every recorder (`recorder`, `attempts`,
`sink`, and `shoal.cron.fires`) builds on.
"""

__all__ = [
    "attempts",
    "db",
    "objects",
    "pgtext",
    "reader",
    "recorder",
    "schema",
    "search",
    "service",
    "sink",
    "store",
    "writer",
]
