"""kvraft.storage."""
