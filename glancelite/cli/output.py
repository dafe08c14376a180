"""Printing results: glanceclient's prettytable layouts, or JSON, or bare values.

Tables are left-aligned prettytables. One object prints as `Property | Value` sorted by
property, values at most 80 columns wide, dicts and lists as JSON. A list prints one row
per object; a missing or null cell is empty and a list cell is Python's repr, as in glance.
`--format json` prints the API documents, `--format value` the cells separated by spaces
(one value per line for a single object); `-c COLUMN` picks columns for every format.
"""
import json
from dataclasses import dataclass
from typing import Callable

import prettytable

from glancelite.cli.errors import EXIT_USAGE, CommandError

FORMATS = ("table", "json", "value")
_SIZE_UNITS = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


@dataclass
class Column:
    """A list column: its header, its key in JSON output, and how to read it from a doc."""
    header: str
    key: str
    get: Callable = None

    def value(self, doc):
        return self.get(doc) if self.get else doc.get(self.key)


def add_format_options(parser):
    parser.add_argument("-f", "--format", choices=FORMATS, default="table",
                        help="Output format (default: table).")
    parser.add_argument("-c", "--column", action="append", dest="columns", metavar="COLUMN",
                        help="Print only this column or property; repeatable.")


def human_size(size):
    """1024-based size with one decimal, trailing zeros dropped: 3000000 -> 2.9MB."""
    size, index = float(size or 0), 0
    while size >= 1024 and index < len(_SIZE_UNITS) - 1:
        size, index = size / 1024, index + 1
    return f"{f'{size:.1f}'.rstrip('0').rstrip('.')}{_SIZE_UNITS[index]}"


def _dict_cell(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _list_cell(value):
    return "" if value is None else str(value)


def _emit(text):
    print(text)


def _pick_columns(columns, wanted):
    if not wanted:
        return columns
    chosen = []
    for name in wanted:
        match = [c for c in columns if name.lower() in (c.header.lower(), c.key.lower())]
        if not match:
            raise CommandError(f"No column named {name!r}; choose from: "
                               f"{', '.join(c.header for c in columns)}", EXIT_USAGE)
        chosen.append(match[0])
    return chosen


def print_list(docs, columns, fmt="table", wanted=None, raw_json=True):
    """Print documents as a table of `columns`; JSON prints the whole documents unless
    columns were picked (or raw_json is False)."""
    columns = _pick_columns(columns, wanted)
    if fmt == "json":
        if raw_json and not wanted:
            _emit(json.dumps(list(docs), indent=2))
        else:
            _emit(json.dumps([{c.key: c.value(doc) for c in columns} for doc in docs], indent=2))
    elif fmt == "value":
        for doc in docs:
            _emit(" ".join(_list_cell(c.value(doc)) for c in columns))
    else:
        table = prettytable.PrettyTable([c.header for c in columns])
        table.align = "l"
        for doc in docs:
            table.add_row([_list_cell(c.value(doc)) for c in columns])
        _emit(table.get_string())


def print_dict(doc, fmt="table", wanted=None, hidden=(), formatters=None, max_width=80):
    """Print one object as `Property | Value` rows sorted by property (JSON: the whole
    document, `hidden` keys included)."""
    shown = doc if fmt == "json" else {k: v for k, v in doc.items() if k not in hidden}
    keys = sorted(shown)
    if wanted:
        missing = [name for name in wanted if name not in doc]
        if missing:
            raise CommandError(f"No property named {missing[0]!r}; choose from: "
                               f"{', '.join(keys)}", EXIT_USAGE)
        keys = list(wanted)
        shown = {key: doc[key] for key in keys}
    if fmt == "json":
        _emit(json.dumps({key: shown[key] for key in keys}, indent=2))
        return
    formatters = formatters or {}
    cells = {key: formatters[key](shown[key]) if key in formatters else _dict_cell(shown[key])
             for key in keys}
    if fmt == "value":
        for key in keys:
            _emit(cells[key])
        return
    table = prettytable.PrettyTable(["Property", "Value"])
    table.align = "l"
    table.max_width = max_width
    for key in keys:
        table.add_row([key, cells[key]])
    _emit(table.get_string())
