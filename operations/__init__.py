"""The wiring on top of learning, trading and scraping: engine registry, replay, live ticks, evaluation and their commands."""
