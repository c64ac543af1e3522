"""Cross-app API plumbing: the one error shape, pagination."""
