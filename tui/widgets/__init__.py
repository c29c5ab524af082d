"""Widgets of the run dashboard."""
