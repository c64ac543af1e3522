"""Tests of the dashboard app, its commands and the main job's seed."""
