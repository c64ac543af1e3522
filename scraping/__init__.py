"""Profit scraping: price levels, opportunities and the profit scraping engine."""
