"""The runtime of real deployments: one job per module.

- ``config``: the cluster file (``ClusterConfig``, ``load_config``, ``write_config``).
- ``auth``: shared-secret key files.
- ``datadir``: an acceptor's data directory, its pid file and lock.
- ``supervise``: ``LocalCluster``, acceptor processes on loopback.
- ``driver``: ``AsyncTcpDriver`` (a client on the caller's event loop) and ``TcpDriver`` (its sync facade).

Imports point down only: ``auth``/``datadir`` <- ``config`` <- ``supervise``, ``driver``; every module here
imports only ``wormspace.errors``, ``wormspace.identity`` and ``wormspace.layers`` (never the checkers:
``wormspace demo --real``, which checks its history, lives in ``wormspace.demo``). ``wormspace.cluster``,
``wormspace.demo`` and the CLI import this package, never the other way round. This ``__init__`` imports
nothing, so importing one module costs only its own imports.
"""
