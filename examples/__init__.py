"""Example workloads: real training runs that use the probe (they need torch)."""
