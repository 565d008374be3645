"""The probe. `parity_probe.py` is a single stdlib-only file copied into images we don't control;
this package only exists so the harness can find that file when installed."""
