"""kvraft.runtime."""
