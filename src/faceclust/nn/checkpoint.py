"""Model checkpoints: ``<name>.safetensors`` weights + ``<name>.json`` config (no pickle).

A checkpoint lives in a model directory as two files written atomically:

* ``<name>.json`` -- ``{"format": "faceclust-checkpoint", "version": 1,
  "kind": <model kind>, "config": {...constructor arguments...},
  "tensors": {param: shape}, "meta": {...free-form: training data, losses...}}``
* ``<name>.safetensors`` -- the state dict.

Loading checks the format/version, the model kind, the config keys and types
(``ParameterError``) and that every stored tensor exists in the model with the
same shape, and no parameter is missing (``InputError`` naming the file).
Generic: any ``nn.Module`` with a JSON-serialisable constructor config works.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import InputError, ParameterError

__all__ = [
    "FORMAT",
    "VERSION",
    "check_config",
    "checkpoint_exists",
    "load_checkpoint",
    "load_state",
    "save_checkpoint",
]

FORMAT = "faceclust-checkpoint"
VERSION = 1


def _paths(directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    d = Path(directory)
    return d / f"{name}.json", d / f"{name}.safetensors"


def checkpoint_exists(directory: str | os.PathLike, name: str) -> bool:
    """True when both files of checkpoint ``name`` exist in ``directory``."""
    j, w = _paths(directory, name)
    return j.is_file() and w.is_file()


def save_checkpoint(
    directory: str | os.PathLike,
    name: str,
    model: nn.Module,
    *,
    kind: str,
    config: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write ``model``'s state dict and config to ``directory/<name>.{safetensors,json}``.

    Both files are written to temporary names and renamed into place, weights
    first, so a reader never sees a config without its weights.
    """
    from safetensors.torch import save_file

    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    jpath, wpath = _paths(d, name)
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "kind": kind,
        "config": dict(config),
        "tensors": {k: list(v.shape) for k, v in state.items()},
        "meta": dict(meta or {}),
    }
    text = json.dumps(doc, indent=2, sort_keys=True)  # fails early if not serialisable
    tmp_w = wpath.with_name(wpath.name + f".tmp{os.getpid()}")
    tmp_j = jpath.with_name(jpath.name + f".tmp{os.getpid()}")
    save_file(state, str(tmp_w), metadata={"format": FORMAT, "kind": kind})
    tmp_j.write_text(text + "\n", encoding="utf-8")
    os.replace(tmp_w, wpath)
    os.replace(tmp_j, jpath)
    return wpath, jpath


def load_checkpoint(
    directory: str | os.PathLike, name: str, *, kind: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, Any]]:
    """Read checkpoint ``name`` from ``directory``; return ``(config, tensors, meta)``.

    Raises ``InputError`` when a file is missing or unreadable, or the weights
    do not match the shapes the JSON declares; ``ParameterError`` when the
    checkpoint holds another kind of model.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    d = Path(directory)
    if not d.is_dir():
        raise InputError(f"{d}: model directory not found")
    jpath, wpath = _paths(d, name)
    for p in (jpath, wpath):
        if not p.is_file():
            raise InputError(f"{p}: checkpoint file missing (train it with `faceclust train`)")
    try:
        doc = json.loads(jpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{jpath}: not a valid checkpoint config ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise InputError(f"{jpath}: not a faceclust checkpoint config")
    if doc.get("version") != VERSION:
        raise InputError(f"{jpath}: checkpoint version {doc.get('version')!r}, expected {VERSION}")
    if doc.get("kind") != kind:
        raise ParameterError(f"{jpath}: holds a {doc.get('kind')!r} model, expected {kind!r}")
    config = doc.get("config")
    shapes = doc.get("tensors")
    if not isinstance(config, dict) or not isinstance(shapes, dict):
        raise InputError(f"{jpath}: config or tensor list missing")
    try:
        tensors = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise InputError(f"{wpath}: unreadable weights ({' '.join(str(exc).split())})") from None
    if set(tensors) != set(shapes):
        diff = sorted(set(tensors) ^ set(shapes))
        raise InputError(f"{wpath}: tensors differ from {jpath.name} ({', '.join(diff[:5])})")
    for key, shape in shapes.items():
        if list(tensors[key].shape) != list(shape):
            raise InputError(
                f"{wpath}: tensor {key!r} has shape {list(tensors[key].shape)}, "
                f"{jpath.name} says {shape}"
            )
    meta = doc.get("meta") if isinstance(doc.get("meta"), dict) else {}
    return config, tensors, meta


def check_config(
    config: Mapping[str, Any], spec: Mapping[str, Any], *, source: str
) -> dict[str, Any]:
    """Validate a loaded config against ``{key: type}``; return only the spec's keys.

    Missing keys, unknown keys and wrong types raise ``ParameterError``.
    Integers are accepted where floats are expected; ``list[int]`` asks for a list of
    integers (layer widths).
    """
    missing = sorted(set(spec) - set(config))
    extra = sorted(set(config) - set(spec))
    if missing or extra:
        raise ParameterError(
            f"{source}: config keys do not match the model (missing: {missing}, unknown: {extra})"
        )
    out: dict[str, Any] = {}
    for key, kind in spec.items():
        value = config[key]
        if kind == list[int]:
            if not (isinstance(value, list) and all(
                    isinstance(v, int) and not isinstance(v, bool) for v in value)):
                raise ParameterError(f"{source}: config {key!r} must be a list of integers, "
                                     f"got {value!r}")
            out[key] = value
            continue
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise ParameterError(f"{source}: config {key!r} must be {kinds}, got {value!r}")
        if not isinstance(value, kinds):
            raise ParameterError(f"{source}: config {key!r} must be {kinds}, got {value!r}")
        out[key] = value
    return out


def load_model(
    directory: str | os.PathLike, name: str, cls: type[nn.Module], *, kind: str,
    spec: Mapping[str, Any], defaults: Mapping[str, Any] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Checkpoint ``name`` of ``directory`` as a new ``cls(**config)``: the config checked
    against ``spec`` (``defaults`` fill keys of models saved before they existed), the
    weights' names and shapes checked; returns ``(model, meta)``."""
    config, tensors, meta = load_checkpoint(directory, name, kind=kind)
    if defaults:
        config = {**defaults, **config}
    model = cls(**check_config(config, spec, source=f"{directory}/{name}.json"))
    load_state(model, tensors, source=f"{directory}/{name}.safetensors")
    return model, meta


def load_state(model: nn.Module, tensors: Mapping[str, torch.Tensor], *, source: str) -> nn.Module:
    """Copy ``tensors`` into ``model`` after checking names and shapes (``InputError`` otherwise)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    extra = sorted(set(tensors) - set(own))
    if missing or extra:
        raise InputError(
            f"{source}: weights do not match the model (missing: {missing[:5]}, unexpected: {extra[:5]})"
        )
    for key, value in own.items():
        if tuple(tensors[key].shape) != tuple(value.shape):
            raise InputError(
                f"{source}: weight {key!r} has shape {tuple(tensors[key].shape)}, "
                f"model expects {tuple(value.shape)}"
            )
    model.load_state_dict({k: v.to(torch.float32) for k, v in tensors.items()})
    model.eval()
    return model
