"""Trading models."""
