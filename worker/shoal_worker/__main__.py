"""``python -m shoal_worker``: the same as the ``shoal-worker`` command."""

from shoal_worker.runner import main

raise SystemExit(main())
