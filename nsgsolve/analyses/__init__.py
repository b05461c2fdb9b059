"""Analyses over resolved policies (each module one question: lint, ...)."""
