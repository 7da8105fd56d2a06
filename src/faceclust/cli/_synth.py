"""``faceclust synth``: write a seeded synthetic face-embedding set with identities."""

from __future__ import annotations

import time
from pathlib import Path

import click

from ..errors import ParameterError
from ._app import main


@main.command("synth")
@click.option("--n", "n", type=int, required=True, help="Number of embeddings (rows).")
@click.option("--ids", "n_ids", type=int, required=True, help="Number of identities (<= n).")
@click.option("--dim", type=int, default=256, show_default=True, help="Embedding dimension.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (>= 0).")
@click.option("--out", "out", type=str, required=True,
              help="Output prefix: writes PREFIX.npy (or .bin) and PREFIX.meta; missing "
                   "folders are created.")
@click.option("--force", is_flag=True, help="Replace existing output files (default: refuse).")
@click.option("--format", "fmt", type=click.Choice(["npy", "bin"]), default="npy",
              show_default=True, help="Feature file format (.bin: raw float32, learn-to-cluster).")
@click.option("--preset", type=click.Choice(["arcface", "dlib", "hard"]), default="arcface",
              show_default=True,
              help="arcface: LFW-calibrated, different people at cosine ~0.01; dlib: ~0.83; "
                   "hard: arcface with more look-alikes, outliers and noise.")
def synth_cmd(n: int, n_ids: int, dim: int, seed: int, out: str, force: bool, fmt: str,
              preset: str) -> None:
    """Generate N synthetic L2-normalised face embeddings of IDS identities (seeded)."""
    from ..synth import PRESETS, write_faces

    if n < 1:
        raise ParameterError(f"--n must be >= 1, got {n}")
    if n_ids < 1:
        raise ParameterError(f"--ids must be >= 1, got {n_ids}")
    if n_ids > n:
        raise ParameterError(f"--ids={n_ids} must be <= --n={n} (every identity needs a sample)")
    if dim < 2:
        raise ParameterError(f"--dim must be >= 2, got {dim}")
    if seed < 0:
        raise ParameterError(f"--seed must be >= 0, got {seed}")
    prefix = Path(out)
    if not prefix.name or prefix.name in (".", ".."):
        raise ParameterError(f"--out {out!r} must name a file prefix, not a directory")
    from ._preflight import check_out_dir, check_out_file, writing

    folder = prefix.parent if str(prefix.parent) else Path(".")
    if not folder.is_dir():
        check_out_dir(folder)  # README: `--out data/part1` in a fresh clone
    feat_path = prefix.parent / f"{prefix.name}.{fmt}"
    check_out_file(feat_path, force=force, size=n * dim * 4)
    check_out_file(prefix.parent / f"{prefix.name}.meta", force=force)
    t0 = time.perf_counter()
    with writing(feat_path):
        feat, meta = write_faces(prefix, n, n_ids, dim, seed, fmt=fmt, config=PRESETS[preset])
    secs = time.perf_counter() - t0
    click.echo(f"synth: wrote {n} x {dim} float32 embeddings of {n_ids} identities "
               f"({preset}, seed {seed}) to {feat} and labels to {meta} in {secs:.2f} s")
