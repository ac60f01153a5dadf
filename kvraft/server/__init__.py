"""kvraft.server."""
