"""The seed's endpoints, at exactly the paths it names (mounted under /ml/)."""
urlpatterns: list = []
