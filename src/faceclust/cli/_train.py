"""``faceclust train``: train the supervised GCN methods and write a model directory.

    faceclust train --method gcn-v FEATURES LABELS --out MODEL_DIR [--set key=value ...]
    faceclust train --method gcn-e FEATURES LABELS --out MODEL_DIR [--set gcn_v=DIR ...]

GCN-E is trained on top of a GCN-V model (read from MODEL_DIR, or from
``--set gcn_v=DIR`` and copied into MODEL_DIR), so one directory then serves
``faceclust cluster --method gcn-ve --model MODEL_DIR``.
"""

from __future__ import annotations

import json
import time

import click

from ..errors import ParameterError
from ._app import main
from ._core import load_features, parse_set

TRAINABLE = ("gcn-v", "gcn-e")


@main.command("train")
@click.argument("features", type=click.Path(dir_okay=False))
@click.argument("labels", type=click.Path(dir_okay=False))
@click.option("--method", "method", required=True, help=f"One of: {', '.join(TRAINABLE)}.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory (created; checkpoints are replaced atomically).")
@click.option("--dim", type=int, default=None, help="Feature dimension of a raw .bin file.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Training parameter, repeatable (e.g. --set steps=3000 --set lr=0.05).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
def train_cmd(features, labels, method, out, dim, settings, seed):
    """Train METHOD on FEATURES with identity LABELS and save it to OUT."""
    from .. import io
    from ..methods._gcn import (
        GCN_E_TRAIN_DEFAULTS,
        GCN_V_TRAIN_DEFAULTS,
        train_gcn_e_model,
        train_gcn_v_model,
    )

    if method not in TRAINABLE:
        raise ParameterError(f"--method: cannot train {method!r}; trainable: {', '.join(TRAINABLE)}")
    params = parse_set(settings)
    x = load_features(features, dim)
    y = io.read_labels(labels, n=x.shape[0])
    t0 = time.perf_counter()
    if method == "gcn-v":
        defaults = GCN_V_TRAIN_DEFAULTS
        meta = train_gcn_v_model(x, y, out, seed=seed, **params)
    else:
        defaults = GCN_E_TRAIN_DEFAULTS
        meta = train_gcn_e_model(x, y, out, seed=seed, **params)
    secs = time.perf_counter() - t0
    losses = meta.get("losses", [])
    used = {k: params.get(k, v) for k, v in defaults.items()}
    click.echo(
        f"{method}: trained on {x.shape[0]} samples in {secs:.1f} s "
        f"(loss {losses[0]:.4g} -> {losses[-1]:.4g}) -> {out}" if losses else
        f"{method}: trained in {secs:.1f} s -> {out}",
        err=True,
    )
    click.echo(json.dumps(used), err=True)
