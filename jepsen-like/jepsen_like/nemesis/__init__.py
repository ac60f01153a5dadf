"""Nemeses: faults injected into a running cluster, and the mechanisms behind them.

- ``base``: the interfaces the cluster layer implements (``ProcessControl``) and the
  network mechanisms (``Network``) provide.
- ``partitions``: partition shapes as sets of directed (src, dst) links to cut.
- ``netns``: one Linux network namespace per node on a bridge, nftables drop rules.
- ``proxy``: the fallback: a per-link TCP proxy on 127.0.0.1 that can stall each
  direction of every link.
- ``processes``: a ``ProcessControl`` over OS processes (kill -9, restart, SIGSTOP/CONT).
- ``storage``: damage a stopped node's LMDB data file.
- ``schedule``: alternate fault and heal phases and log them.
"""
