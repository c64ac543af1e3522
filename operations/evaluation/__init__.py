"""Walk-forward evaluation: does learning improve trading? Replays, scores and reports baseline against learning."""
