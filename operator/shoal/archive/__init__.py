"""Run history and job logs in PostgreSQL, so both outlive pods and Workflow objects.

`schema` migrates the database, `sink` streams log lines into it without ever
blocking the runner, `store` records runs and nodes, `reader` reads them back.
Everything here needs the `operator` extra (asyncpg); worker images never import it.
"""
