"""Engines: execute a LaunchPlan and bring back the probe's snapshot."""
