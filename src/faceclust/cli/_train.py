"""``faceclust train``: train any supervised method and write its model directory.

    faceclust train --method M FEATURES LABELS --out MODEL_DIR [--set key=value ...] [--seed S]

Generic over the registry: every method with ``needs_model`` is trained by its
``train`` class method (training parameters = its keyword arguments, given
with ``--set``); ``MODEL_DIR/training.json`` records what the model was
trained on (:mod:`faceclust.methods._modeldir`), which ``faceclust cluster
--model`` checks. ``faceclust methods`` marks the trainable methods.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import click

from ..errors import ParameterError
from ..params import parse_set
from ._app import main
from ._core import load_features


def trainable() -> list[str]:
    """Names of the registered methods that need (and can train) a model."""
    from ..methods import METHODS

    return sorted(n for n, c in METHODS.items() if getattr(c, "needs_model", False))


@main.command("train")
@click.argument("features", type=click.Path(dir_okay=False))
@click.argument("labels", type=click.Path(dir_okay=False))
@click.option("--method", "method", required=True,
              help="A method marked [needs model] in `faceclust methods`.")
@click.option("--out", required=True, type=click.Path(file_okay=False),
              help="Model directory (created; checkpoints are replaced atomically).")
@click.option("--dim", type=int, default=None, help="Feature dimension of a raw .bin file.")
@click.option("--set", "settings", multiple=True, metavar="KEY=VALUE",
              help="Training parameter, repeatable (e.g. --set steps=3000 --set lr=0.05).")
@click.option("--embedding", default=None,
              help="Name of the embedding model, recorded in training.json "
                   "(default: from the features file name, e.g. arcface512).")
@click.option("--seed", type=int, default=42, show_default=True, help="Random seed.")
def train_cmd(features, labels, method, out, dim, settings, embedding, seed):
    """Train METHOD on FEATURES with identity LABELS and save it to OUT."""
    from .. import io
    from ..methods import get_method
    from ..methods._modeldir import (
        check_train_params,
        guess_embedding,
        train_defaults,
        training_info,
        write_training_info,
    )

    cls = get_method(method)
    if not getattr(cls, "needs_model", False):
        raise ParameterError(
            f"--method: {method!r} needs no training; trainable: {', '.join(trainable())}"
        )
    params = parse_set(settings)
    check_train_params(cls, params)
    from ._preflight import check_out_dir

    check_out_dir(out)  # before minutes of training
    x = load_features(features, dim)
    y = io.read_labels(labels, n=x.shape[0])
    t0 = time.perf_counter()
    result = cls.train(x, y, out, seed=seed, **params)
    secs = time.perf_counter() - t0
    used = {**train_defaults(cls), **params}
    info = training_info(
        method, x, y, params=used, seed=seed, result=result,
        command=["faceclust", *sys.argv[1:]] if sys.argv and "faceclust" in sys.argv[0]
        else ["faceclust", "train", "--method", method, features, labels, "--out", out,
              *[a for s in settings for a in ("--set", s)], "--seed", str(seed)],
        embedding=embedding or guess_embedding(features), features_path=features,
        labels_path=labels, seconds=secs,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    write_training_info(out, info)
    click.echo(f"{method}: trained on {x.shape[0]} samples ({x.shape[1]}-d, "
               f"{info['data']['class_sizes']['identities']} identities) in {secs:.1f} s -> {out}",
               err=True)
    click.echo(json.dumps(used, default=str), err=True)
