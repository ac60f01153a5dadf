"""kvraft.cli."""
