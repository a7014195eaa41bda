"""Shoal test infrastructure: a real control plane, node agent, MinIO, PostgreSQL.

Importing this package starts nothing; the pytest plugin (``support.plugin``) starts
each service lazily, once per session, when a test first asks for it.
"""
