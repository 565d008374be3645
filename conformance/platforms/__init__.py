"""Platform adapters: a real platform spec in, a LaunchPlan out (what the platform injects)."""
