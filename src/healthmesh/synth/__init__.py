"""Synthetic institutions and patients for demos and tests (no real person's data)."""
