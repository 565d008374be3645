"""parity: a parity conformance suite for ML-platform migrations (Kubernetes → SageMaker)."""
