"""GET /v2/images query parameters → ListQuery, with Glance's checks and 400 messages.

A parameter counts once, its last occurrence winning, as in the `first`/`next` links
Glance rebuilds from the query; only `tag`, `sort_key` and `sort_dir` may repeat.
Any parameter that is not a core column is an exact match on an extra property.
"""
import re
from datetime import datetime, timedelta
from urllib.parse import unquote_to_bytes

from glancelite.errors import BadRequest
from glancelite.listing import MEMBER_STATUS_FILTERS, SORT_KEYS, VISIBILITY_FILTERS, Comparison, ListQuery

# Columns taking `eq:` or `in:` operators; time columns take comparisons.
_OPERATOR_COLUMNS = ("name", "id", "status", "container_format", "disk_format")
_TIME_COLUMNS = ("created_at", "updated_at")
_TIME_OPERATORS = ("eq", "neq", "gt", "gte", "lt", "lte")
# Integer columns: exact match, and ranges as `<column>_min` / `<column>_max`.
_INTEGER_COLUMNS = ("size", "virtual_size", "min_ram", "min_disk")
_EXACT_COLUMNS = ("owner", "checksum", "os_hash_algo", "os_hash_value")
# Read by parse() itself; `deleted` is accepted and ignored, as Glance does.
_NOT_FILTERS = ("limit", "marker", "member_status", "tag", "sort", "sort_key", "sort_dir",
                "visibility", "os_hidden", "protected", "deleted")
_INT64_MIN, _INT64_MAX = -2 ** 63, 2 ** 63 - 1

# ISO 8601 as Glance's parser reads it: YYYY, YYYY-M(M)[-D(D)] or YYYYMMDD, then an
# optional [T ]hh[[:]mm][[:]ss[.fff]] and zone (Z, ±hh, ±hh[:]mm).
_ISO8601 = re.compile(r"""
    (?P<year>\d{4})
    (?: (?: -(?P<month>\d{1,2}) | (?P<basic_month>\d{2})(?!\Z) )
        (?: (?: -(?P<day>\d{1,2}) | (?P<basic_day>\d{2}) )
            (?: [T\ ](?P<hour>\d{2}) (?: :?(?P<minute>\d{2}) )?
                (?: :?(?P<second>\d{1,2}) (?: [.,](?P<fraction>\d+) )? )?
                (?P<zone> Z | (?P<sign>[-+])(?P<zone_hour>\d{2}) :? (?P<zone_minute>\d{2})? )?
            )?
        )?
    )?""", re.VERBOSE)


def query_pairs(raw):
    """(name, value) pairs of a raw query string, in request order; 400 if not UTF-8."""
    pairs = []
    for field in raw.split(b"&"):
        if field:
            name, _sep, value = field.partition(b"=")
            pairs.append((_decode(name), _decode(value)))
    return pairs


def _decode(text):
    try:
        return unquote_to_bytes(text.replace(b"+", b" ")).decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("Error decoding your request. Either the URL or the request body "
                         "contained characters that could not be decoded by Glance") from None


def parse(pairs):
    """The ListQuery of (name, value) pairs; checks run in Glance's order."""
    params = dict(pairs)
    visibility = params.get("visibility")
    if visibility and visibility not in VISIBILITY_FILTERS:
        raise BadRequest(f"Invalid visibility value: {visibility}")
    if "changes-since" in params:
        raise BadRequest('The "changes-since" filter is no longer available on v2.')
    member_status = params.get("member_status", "accepted")
    if member_status not in MEMBER_STATUS_FILTERS:
        raise BadRequest(f"Invalid status: {member_status}")
    limit = _limit(params["limit"]) if "limit" in params else None
    sort, tie_direction = _sorting(params, pairs)
    os_hidden = params.get("os_hidden", "false").lower()
    comparisons = [Comparison("os_hidden", "eq", _boolean("os_hidden", os_hidden))]
    if "protected" in params:
        comparisons.append(Comparison("protected", "eq",
                                      _boolean("protected", params["protected"])))
    properties = []
    for name, value in params.items():
        if name not in _NOT_FILTERS:
            if name in _TIME_COLUMNS:
                comparisons.extend(_time_filter(name, value))
                continue
            comparison = _column_filter(name, value)
            if comparison is None:
                properties.append((name, value))
            else:
                comparisons.append(comparison)
    return ListQuery(limit=limit, marker=params.get("marker"), sort=sort,
                     tie_direction=tie_direction, comparisons=tuple(comparisons),
                     properties=tuple(properties),
                     tags=tuple(value.strip() for name, value in pairs if name == "tag"),
                     visibility=visibility, member_status=member_status)


def _limit(text):
    try:
        limit = int(text)
    except ValueError:
        raise BadRequest("limit param must be an integer") from None
    if limit < 0:
        raise BadRequest("limit param must be positive")
    return limit


def _sorting(params, pairs):
    """(key, direction) pairs, and the tie-breakers' direction: the direction given when
    only one is, else desc. Classic syntax: a single sort_dir applies to every sort_key."""
    if "sort" in params:
        if "sort_key" in params or "sort_dir" in params:
            raise BadRequest("Old and new sorting syntax cannot be combined")
        sort = []
        for item in params["sort"].strip().split(","):
            key, _sep, direction = item.partition(":")
            sort.append((_sort_key(key.strip()), _sort_dir(direction.strip() if direction
                                                           else "desc")))
        given = [direction for _key, direction in sort]
    else:
        keys = [_sort_key(value.strip()) for name, value in pairs if name == "sort_key"]
        given = [_sort_dir(value.strip()) for name, value in pairs if name == "sort_dir"]
        if len(given) > 1 and len(given) != len(keys):
            raise BadRequest("Number of sort dirs does not match the number of sort keys")
        keys = keys or ["created_at"]
        directions = given if len(given) > 1 else (given or ["desc"]) * len(keys)
        sort = list(zip(keys, directions, strict=True))
    return tuple(sort), given[0] if len(given) == 1 else "desc"


def _sort_key(key):
    if key not in SORT_KEYS:
        raise BadRequest(f"Invalid sort key: {key}. It must be one of the following: "
                         f"{', '.join(SORT_KEYS)}.")
    return key


def _sort_dir(direction):
    if direction not in ("asc", "desc"):
        raise BadRequest(f"Invalid sort direction: {direction}")
    return direction


def _boolean(name, text):
    if text not in ("true", "false"):
        raise BadRequest(f"Invalid value '{text}' for '{name}' filter. "
                         f"Valid values are 'true' or 'false'.")
    return text == "true"


def _column_filter(name, value):
    """The Comparison for a core-column filter; None when `name` is an extra property."""
    if name in _OPERATOR_COLUMNS:
        return _operator_filter(name, value)
    if name in _INTEGER_COLUMNS:
        number = _integer(value)
        if number is None or not _INT64_MIN <= number <= _INT64_MAX:
            return Comparison(name, "in", ())  # no row holds it: match nothing, like Glance
        return Comparison(name, "eq", number)
    if name[-4:] in ("_min", "_max") and name[:-4] in _INTEGER_COLUMNS:
        number = _integer(value)
        if number is None:
            raise BadRequest("Unable to filter on a range with a non-numeric value.")
        # No row lies beyond int64, so clamping keeps the meaning and suits every database.
        number = min(max(number, _INT64_MIN), _INT64_MAX)
        return Comparison(name[:-4], "gte" if name.endswith("_min") else "lte", number)
    if name in _EXACT_COLUMNS:
        return Comparison(name, "eq", value)
    return None


def _integer(text):
    try:
        return int(text)
    except ValueError:
        return None


def _split_operator(value):
    """(operator, operand) of `op:operand`; a value without ':', or one that is wholly an
    ISO 8601 time (which has colons), is an operand for `eq`."""
    operator, sep, operand = value.partition(":")
    if not sep or _parse_isotime(value) is not None:
        return "eq", value
    return operator, operand


def _operator_filter(name, value):
    operator, operand = _split_operator(value)
    if operator == "in":
        return Comparison(name, "in", tuple(_in_values(operand)))
    if operator == "eq":
        return Comparison(name, "eq", operand)
    raise BadRequest(f"Unable to filter by unknown operator '{operator}'.")


def _time_filter(name, value):
    operator, operand = _split_operator(value)
    moment = _parse_isotime(operand)
    if moment is None:
        raise BadRequest(f'Bad "{name}" query filter format. Use ISO 8601 DateTime notation.')
    if operator not in _TIME_OPERATORS:
        raise BadRequest("Unable to filter on a unknown operator.")
    if moment.microsecond:
        return [Comparison(name, operator, moment)]
    # Times are shown in whole seconds but stored with microseconds: a whole-second operand
    # stands for that whole second, so `eq:` with a time copied from an image matches it.
    second_after = moment + timedelta(seconds=1)
    return {
        "eq": [Comparison(name, "gte", moment), Comparison(name, "lt", second_after)],
        "neq": [Comparison(name, "outside", (moment, second_after))],
        "gt": [Comparison(name, "gte", second_after)],
        "gte": [Comparison(name, "gte", moment)],
        "lt": [Comparison(name, "lt", moment)],
        "lte": [Comparison(name, "lt", second_after)],
    }[operator]


def _parse_isotime(text):
    """Naive UTC datetime of an ISO 8601 text, or None when it is not one."""
    match = _ISO8601.fullmatch(text)
    if match is None:
        return None

    def number(*groups):
        return next((int(match[group]) for group in groups if match[group]), 0)

    fraction = (match["fraction"] or "").ljust(6, "0")[:6]
    try:
        moment = datetime(int(match["year"]), number("month", "basic_month") or 1,
                          number("day", "basic_day") or 1, number("hour"), number("minute"),
                          number("second"), int(fraction))
        if match["sign"]:
            offset = timedelta(hours=number("zone_hour"), minutes=number("zone_minute"))
            moment = moment - offset if match["sign"] == "+" else moment + offset
    except (ValueError, OverflowError):
        return None
    return moment


def _in_values(text):
    """The values of `in:`: comma-separated, a value in double quotes may hold commas."""
    _check_quotes(text)
    values, at = [], 0
    while at < len(text):
        if text[at] == '"':
            end = _closing_quote(text, at + 1)
            values.append(text[at + 1:end])
            at = end + 1
        else:
            end = text.find(",", at)
            end = len(text) if end < 0 else end
            values.append(text[at:end])
            at = end
        if text.startswith(",", at):
            at += 1
    return values


def _check_quotes(text):
    """Quotes must open after a comma (or at the start), close before one (or at the end)
    and be closed; a quote after a backslash is literal."""
    inside = False
    for at, char in enumerate(text):
        if char != '"' or (at and text[at - 1] == "\\"):
            continue
        if not inside and at and text[at - 1] != ",":
            raise BadRequest(f"Invalid filter value {text}. "
                             f"There is no comma before opening quotation mark.")
        if inside and at + 1 < len(text) and text[at + 1] != ",":
            raise BadRequest(f"Invalid filter value {text}. "
                             f"There is no comma after closing quotation mark.")
        inside = not inside
    if inside:
        raise BadRequest(f"Invalid filter value {text}. The quote is not closed.")


def _closing_quote(text, at):
    """Index of the quote closing a value that starts at `at` (backslash escapes)."""
    while at < len(text) and text[at] != '"':
        at += 2 if text[at] == "\\" else 1
    return min(at, len(text))
