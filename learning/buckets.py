"""Confidence buckets shared by the aggregates: ten equal-width ranges over [0, 1]."""
BUCKET_COUNT = 10


def bucket_index(confidence: float) -> int:
    return min(int(confidence * BUCKET_COUNT), BUCKET_COUNT - 1)


def bucket_label(index: int) -> str:
    return f"{index / BUCKET_COUNT:.1f}-{(index + 1) / BUCKET_COUNT:.1f}"


def confidence_range(confidence: float) -> str:
    """The label of the bucket a confidence falls in: 0.63 -> "0.6-0.7"; 1.0 -> "0.9-1.0"."""
    return bucket_label(bucket_index(confidence))


def bucket_midpoint(index: int) -> float:
    return (index + 0.5) / BUCKET_COUNT


def label_midpoint(label: str) -> float:
    """The midpoint of a bucket given its label: "0.6-0.7" -> 0.65."""
    low, high = (float(bound) for bound in label.split("-"))
    return (low + high) / 2


ALL_BUCKETS = tuple(bucket_label(index) for index in range(BUCKET_COUNT))
