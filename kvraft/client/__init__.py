"""kvraft.client."""
