"""Shared pytest configuration: load the test-infrastructure fixtures (tests/support)."""

import sys
from pathlib import Path

# `support` lives next to this file; make it importable whatever pytest's import mode.
sys.path.insert(0, str(Path(__file__).resolve().parent))

pytest_plugins = ["support.plugin"]
