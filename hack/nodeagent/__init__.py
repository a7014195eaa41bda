"""Shoal's test node agent: a kubelet stand-in that runs pods as local processes.

It registers Nodes, keeps their Leases fresh, runs the containers of every pod bound
to them as host processes (optionally in a private mount namespace so volumes appear
at their declared paths), reports pod status, and serves the kubelet's
``/containerLogs`` endpoint so ``kubectl logs -f`` works through the API server.
It is test infrastructure, not product code.
"""
