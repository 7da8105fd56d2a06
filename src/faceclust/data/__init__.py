"""Bundled data files (package resources)."""
