//! A stand-in for the Kubernetes API server (placeholder; being written).
