"""kvraft.transport."""
