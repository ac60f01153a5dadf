"""kvraft.kv."""
