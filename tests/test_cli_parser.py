"""The command line parser is made for the named command alone (all of it costs ~6 ms of every command), and
reads that command exactly as the whole parser does."""

from __future__ import annotations

import argparse

import pytest

from pixelbuild.cli import _SUBPARSERS, _command_named, _parser

NAMES = [name for names, _add in _SUBPARSERS for name in names]


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    (commands,) = [action for action in parser._actions if isinstance(action, argparse._SubParsersAction)]
    found: argparse.ArgumentParser = commands.choices[name]
    return found


@pytest.mark.parametrize("name", NAMES)
def test_a_command_alone_reads_as_in_the_whole_parser(name: str) -> None:
    assert _subparser(_parser(name), name).format_help() == _subparser(_parser(), name).format_help()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["build"], "build"),
        (["-C", "game", "--json", "build", "-j", "2"], "build"),
        (["-Cgame", "--manifest=other.yaml", "check"], "check"),
        (["--manifest", "other.yaml", "merge-lock", "a", "b", "c"], "merge-lock"),
        (["gallery"], None),  # a review command: the whole parser
        (["bulid"], None),  # a typo: the whole parser names the choices
        (["--version"], None),
        (["-h"], None),
        (["--man", "other.yaml", "build"], None),  # an abbreviation: argparse knows it, the whole parser reads it
        (["-C"], None),
        ([], None),
    ],
)
def test_the_command_is_found_after_global_options_only(arguments: list[str], named: str | None) -> None:
    assert _command_named(arguments) == named
