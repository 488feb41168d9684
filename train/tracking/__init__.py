"""MLflow: runs and their liveness, the registry, gated promotion, output folders, repair of what a crash left."""

__all__ = ["doctor", "outputs", "promotion", "registry", "runs"]
