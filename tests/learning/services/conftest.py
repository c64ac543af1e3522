"""The services' tests start with no model loaded or kept in this process."""
from tests.learning.learnable import fresh_model_state  # noqa: F401  (autouse)
