"""Settings: base (shared), local (embedded default), test (PostgreSQL), production."""
