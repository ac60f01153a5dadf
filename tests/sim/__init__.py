"""Deterministic simulation of a Raft cluster: N cores over a faulty simulated network.

- ``network.py``: the wire (drop, duplicate, delay, reorder, symmetric and one-way cuts).
- ``cluster.py``: N nodes, each a RawNode over a MemoryLogStore ("its disk") plus an
  applied-entries state machine, driven through the Ready contract one stage at a time,
  with crashes between any two stages and restarts from what was durable.
- ``invariants.py``: Raft's safety properties, checked after every step.
- ``schedule.py``: random schedules from one seed (the seed runner, ``python -m tests.sim``).
- ``test_*.py``: unit tests of the pieces and the hypothesis state machines (3 and 5 nodes).
"""
