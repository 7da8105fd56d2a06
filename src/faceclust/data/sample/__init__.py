"""Bundled synthetic sample: features.npy + labels.meta (see README.md)."""
