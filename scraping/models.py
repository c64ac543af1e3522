"""Profit scraping models."""
