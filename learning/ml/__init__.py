"""Pure machine learning for tradelearn: feature schema, online and batch models, hybrid prediction, persistence."""
