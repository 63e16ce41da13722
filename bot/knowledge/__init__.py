"""Persona and FAQ: loading, validation, search and live reload."""
