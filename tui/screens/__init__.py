"""Screens: setup (forms), run (live dashboard) and modals."""
