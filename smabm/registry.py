"""Subcommand registry, separate from cli.py so `python -m smabm` and the console script share it."""

from __future__ import annotations

import sys
from collections.abc import Callable

import orjson

COMMANDS: dict[str, Callable] = {}


def command(name: str):
    def deco(fn):
        COMMANDS[name] = fn
        return fn
    return deco


def print_json(obj) -> None:
    sys.stdout.write(orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode() + "\n")
