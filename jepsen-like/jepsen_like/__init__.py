"""jepsen-like: a fault-injection harness for kvraft.

The parts follow Jepsen's design: workloads generate operations that clients perform
against a real cluster while nemeses inject faults; every invocation and completion is
recorded in a history, which checkers then judge (linearizability of registers, lost
writes of sets). This directory is not installed with kvraft: scripts and tests put
``jepsen-like/`` on ``sys.path`` and import ``jepsen_like``.
"""
