"""faceclust.params.parse_set: the one key=value parser of the CLI and the benchmarks."""

import pytest

from faceclust.errors import ParameterError
from faceclust.params import parse_set


def test_values_are_python_literals_bools_none_or_strings():
    got = parse_set(["k=30", " alpha = 0.25", "name=foo bar", "on=True", "off=false",
                     "t=none", "l=[1, 2]", "k=40"])
    assert got == {"k": 40, "alpha": 0.25, "name": "foo bar", "on": True, "off": False,
                   "t": None, "l": [1, 2]}
    assert type(got["k"]) is int and type(got["alpha"]) is float


@pytest.mark.parametrize("bad", ["k", "=3", " =3"])
def test_item_without_key_or_equals_is_one_line_error(bad):
    with pytest.raises(ParameterError, match="key=value"):
        parse_set([bad])


def test_cli_uses_the_same_parser():
    from faceclust.cli import _core, _train

    assert _core.parse_set is parse_set and _train.parse_set is parse_set
