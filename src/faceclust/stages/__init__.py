"""The stages every clustering method is composed of.

    kNN graph -> refine (similarities) -> select (edges) -> verify (edges, optional) -> partition

Each stage is a pure function over arrays (``KnnGraph`` in, arrays out), so a
published method is a short composition of them in :mod:`faceclust.methods`.
"""
