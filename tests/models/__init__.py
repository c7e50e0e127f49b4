"""Helpers that build and export the models the frontend and target tests use."""
