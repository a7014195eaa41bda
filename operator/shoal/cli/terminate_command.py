"""`shoal terminate`: a stop that runs nothing more (see `shoal.cli.stop_command`)."""

from __future__ import annotations

from shoal.cli.stop_command import configure_terminate as configure

__all__ = ["configure"]
