"""Contracts and HTTP plumbing shared by WeaveWave's three services (no torch, no vLLM)."""
