"""Bundled example scenarios: small, realistic races with a buggy and a fixed version."""
