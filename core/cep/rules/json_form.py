"""JSON <-> rule tree. The JSON form is what the API and the `rules` topic store.

from_json refuses what is not the JSON form's shape (keys, types, known words), each refusal naming
its JSON path, and leaves what a rule means to the checker, as the parser does for text. to_json
leaves defaults out, so JSON -> tree -> JSON is canonical.
"""
from __future__ import annotations

import json
from typing import Any, assert_never

from . import tree
from .checker import (
    DEFINE_NAME,
    MAX_TREE_DEPTH,
    REF,
    STAGE_NAME,
    TIMES,
    TOO_DEEP,
    WINDOW,
    WITHIN,
    WITHIN_TYPE,
    check,
    is_identifier,
    split_argument,
    split_symbol,
)
from .tree import RuleError

_OPERATORS = (*tree.LOGICAL, *tree.ARITHMETIC, *tree.COMPARISONS, "not", "neg")
_STAGE_KEYS = {"name", "link", "times", "optional", "greedy", "inner"}


def from_json(obj: Any) -> tree.Rule:
    """A stored rule (JSON text or an already-decoded object) -> checked rule."""
    if isinstance(obj, (str, bytes)):
        try:
            obj = json.loads(obj)
        except (ValueError, RecursionError) as exc:
            raise RuleError(f"not valid JSON: {exc}") from None
    rule = _rule(obj)
    check(rule)
    return rule


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _json_kind(value: Any) -> str:
    """What a decoded JSON value is, in JSON's words, for errors that say what came instead of an object."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, list):
        return "an array"
    return "a string" if isinstance(value, str) else type(value).__name__  # the last: not from JSON at all


def _rule(obj: Any) -> tree.Rule:
    if not isinstance(obj, dict):
        raise RuleError(f"a rule must be a JSON object, not {_json_kind(obj)}", "$")
    unknown = set(obj) - {"version", "partition", "defines", "if", "until", "pattern", "then"}
    if unknown:
        raise RuleError(f"unknown keys {sorted(unknown)}", "$")
    if obj.get("version", tree.VERSION) != tree.VERSION:
        raise RuleError(f"unsupported version {obj.get('version')!r}; this engine reads version {tree.VERSION}",
                        "$.version")
    if ("if" in obj) == ("pattern" in obj):
        raise RuleError("a rule has exactly one of 'if' (a condition) or 'pattern' (a sequence)", "$")
    then = obj.get("then")
    if not isinstance(then, str) or not is_identifier(then):
        raise RuleError("'then' must be a signal name such as ARBITRAGE_SIGNAL", "$.then")
    defines = obj.get("defines", [])
    if not isinstance(defines, list):
        raise RuleError("'defines' must be a list", "$.defines")
    pattern = _pattern(obj["pattern"]) if "pattern" in obj else None
    read = tuple(_define(define, f"$.defines[{i}]") for i, define in enumerate(defines))
    partition = _partition(obj["partition"]) if "partition" in obj else None
    until = _expr(obj["until"], "$.until", 0) if "until" in obj else None
    return tree.Rule(read, pattern if pattern is not None else _expr(obj["if"], "$.if", 0), then, "$", partition,
                     until)


def _partition(partition: Any) -> tree.Partition:
    path = "$.partition"
    if not isinstance(partition, dict) or set(partition) - {"by", "covers"} \
            or partition.get("by") not in (["symbol"], ["symbol", "venue"], ["venue", "symbol"]):
        raise RuleError('a partition is {"by": ["symbol"] or ["symbol", "venue"], "covers"?: ["*/USDT", ...]}', path)
    covers = partition.get("covers", [])
    if not isinstance(covers, list):
        raise RuleError("'covers' must be a list of patterns such as \"*/USDT\"", path + ".covers")
    return tree.Partition("venue" in partition["by"], tuple(covers), path)


def _define(define: Any, path: str) -> tree.Define:
    if not isinstance(define, dict) or set(define) != {"name", "expr"}:
        raise RuleError("a define is {\"name\": ..., \"expr\": ...}", path)
    if not isinstance(define["name"], str):
        raise RuleError(DEFINE_NAME, path + ".name")
    return tree.Define(define["name"], _expr(define["expr"], path + ".expr", 1), path)


def _pattern(pattern: Any) -> tree.Pattern:
    path = "$.pattern"
    if not isinstance(pattern, dict) or set(pattern) - {"stages", "within_ms", "within_type", "skip", "emit_at_once"}:
        raise RuleError("a pattern is {\"stages\": [...], \"within_ms\"?: int, \"within_type\"?: str, "
                        "\"skip\"?: {...}, \"emit_at_once\"?: bool}", path)
    stages = pattern.get("stages")
    if not isinstance(stages, list) or not stages:
        raise RuleError("a pattern needs at least one stage", path + ".stages")
    within = pattern.get("within_ms")
    if within is not None and not _is_count(within):
        raise RuleError(WITHIN, path + ".within_ms")
    within_type = pattern.get("within_type", "first_and_last")
    if not isinstance(within_type, str) or within_type not in tree.WITHIN_TYPES:
        raise RuleError(WITHIN_TYPE, path + ".within_type")
    read = tuple(_stage(stage, i, f"{path}.stages[{i}]") for i, stage in enumerate(stages))
    skip = _skip(pattern["skip"], path + ".skip") if "skip" in pattern else None
    emit_at_once = pattern.get("emit_at_once", False)
    if not isinstance(emit_at_once, bool):
        raise RuleError("'emit_at_once' must be true or false", path + ".emit_at_once")
    return tree.Pattern(read, within, within_type, skip, path, emit_at_once)


def _stage(stage: Any, i: int, path: str) -> tree.Stage:
    if not isinstance(stage, dict) or set(stage) - _STAGE_KEYS:
        raise RuleError("a stage is {\"name\", \"link\"?, \"times\"?, \"optional\"?, \"greedy\"?, \"inner\"?}", path)
    name = stage.get("name")
    if not isinstance(name, str):
        raise RuleError(STAGE_NAME, path + ".name")
    link = stage.get("link")
    if (i == 0) != (link is None) or (link is not None and (not isinstance(link, str) or link not in tree.LINKS)):
        raise RuleError(f"the first stage has no 'link'; every later one has one of {sorted(tree.LINKS)}",
                        path + ".link")
    times = stage.get("times", [1, 1])
    if not isinstance(times, list) or len(times) != 2 or not _is_count(times[0]) \
            or not (times[1] is None or _is_count(times[1])):
        raise RuleError(TIMES, path + ".times")
    for flag in ("optional", "greedy"):
        if not isinstance(stage.get(flag, False), bool):
            raise RuleError(f"'{flag}' must be true or false", path + "." + flag)
    inner = stage.get("inner", "relaxed")
    if not isinstance(inner, str) or inner not in tree.INNER:
        raise RuleError(f"'inner' is one of {sorted(tree.INNER)}", path + ".inner")
    optional, greedy = stage.get("optional", False), stage.get("greedy", False)
    return tree.Stage(name, link, times[0], times[1], optional, greedy, inner, path)


def _skip(skip: Any, path: str) -> tree.Skip:
    strategy = skip.get("strategy") if isinstance(skip, dict) else None
    if not isinstance(strategy, str) or strategy not in tree.SKIPS:
        raise RuleError(f"'skip' is {{\"strategy\": one of {sorted(tree.SKIPS)}}}", path)
    targeted = strategy in tree.TARGETED_SKIPS
    if set(skip) != ({"strategy", "stage"} if targeted else {"strategy"}):
        raise RuleError("only skip_to_first and skip_to_last name a 'stage'", path)
    stage = skip.get("stage")
    if targeted and not isinstance(stage, str):
        raise RuleError("a skip's 'stage' is the name of a stage", path + ".stage")
    return tree.Skip(strategy, stage, path)


def _expr(node: Any, path: str, depth: int) -> tree.Expr:
    if isinstance(node, bool) or node is None:
        raise RuleError("expected an expression", path)
    if isinstance(node, (int, float)):
        return tree.Number(node, path)
    if not isinstance(node, dict):
        raise RuleError("expected an expression", path)
    if depth > MAX_TREE_DEPTH:
        raise RuleError(TOO_DEEP, path)
    if "op" in node:
        return _operation(node, path, depth)
    if "fn" in node:
        return _function(node, path, depth)
    if "ref" in node:
        if set(node) != {"ref"} or not isinstance(node["ref"], str):
            raise RuleError(REF, path)
        return tree.Ref(node["ref"], path)
    if "stage" in node:
        return _stage_value(node, path)
    if "event" in node:
        return _event(node, path)
    raise RuleError("expected an expression: a number or an object with op, fn, ref, stage or event", path)


def _event(node: dict, path: str) -> tree.Expr:
    field = node["event"]
    if not isinstance(field, str) or set(node) - {"event", "is"} or (("is" in node) != (field in tree.EVENT_TEXTS)):
        raise RuleError(f'an event field is {{"event": one of {list(tree.EVENT_NUMBERS)}}} or '
                        f'{{"event": one of {list(tree.EVENT_TEXTS)}, "is": "..."}}', path)
    if "is" not in node:
        return tree.EventField(field, path)
    if not isinstance(node["is"], str):
        raise RuleError("'is' must be a string", path + ".is")
    return tree.EventIs(field, node["is"], path)


def _operation(node: dict, path: str, depth: int) -> tree.Expr:
    op, args = node["op"], node.get("args")
    if set(node) != {"op", "args"} or not isinstance(args, list):
        raise RuleError("an operation is {\"op\": ..., \"args\": [...]}", path)
    arity = 1 if op in ("not", "neg") else 2
    if len(args) != arity:
        raise RuleError(f"{op!r} takes {arity} argument(s)", path)
    if op not in _OPERATORS:
        raise RuleError(f"unknown operator {op!r}", path)
    operands = [_expr(arg, f"{path}.args[{i}]", depth + 1) for i, arg in enumerate(args)]
    if op == "neg":
        return tree.negate(operands[0], path)
    if op == "not":
        return tree.Unary(op, operands[0], path)
    return tree.Binary(op, operands[0], operands[1], path)


def _function(node: dict, path: str, depth: int) -> tree.Expr:
    fn = node["fn"]
    if fn == "abs":
        if set(node) != {"fn", "args"} or not isinstance(node["args"], list) or len(node["args"]) != 1:
            raise RuleError("abs takes one argument", path)
        return tree.Abs(_expr(node["args"][0], path + ".args[0]", depth + 1), path)
    if fn not in tree.QUOTE_FUNCTIONS and fn not in tree.WINDOW_FUNCTIONS:
        raise RuleError(f"unknown function {fn!r}", path)
    windowed = fn in tree.WINDOW_FUNCTIONS
    if windowed and "args" in node:  # over an expression
        if set(node) != {"fn", "args", "window_ms"} or not isinstance(node["args"], list) or len(node["args"]) != 1:
            raise RuleError(f"{fn} over an expression is {{\"fn\", \"args\": [expr], \"window_ms\"}}", path)
        if not _is_count(node["window_ms"]):
            raise RuleError(WINDOW, path + ".window_ms")
        return tree.ExprWindow(fn, _expr(node["args"][0], path + ".args[0]", depth + 1), node["window_ms"], path)
    keys = {"fn", "symbol", "venue", "window_ms"} if windowed else {"fn", "symbol", "venue"}
    if set(node) - keys or (windowed and "window_ms" not in node):
        raise RuleError(f"{fn} takes keys {sorted(keys)} (symbol and venue optional; no symbol: a partitioned "
                        f"rule's key, on the venue if one is given)", path)
    symbol, venue = node.get("symbol"), node.get("venue")
    bad_symbol = symbol is not None and (not isinstance(symbol, str) or "@" in symbol)
    if bad_symbol or not (venue is None or isinstance(venue, str)):
        raise RuleError("'symbol' must be a string BASE/QUOTE and 'venue' a string", path)
    if symbol is not None:
        symbol, venue = split_symbol(symbol if venue is None else f"{symbol}@{venue}", path, ".symbol")
    elif venue is not None:
        symbol, venue = split_argument(f"@{venue}", path, ".venue")
    if not windowed:
        return tree.QuoteFn(fn, symbol, venue, path)
    if not _is_count(node["window_ms"]):
        raise RuleError(WINDOW, path + ".window_ms")
    return tree.WindowFn(fn, symbol, venue, node["window_ms"], path)


def _stage_value(node: dict, path: str) -> tree.StageValue:
    stage, agg = node["stage"], node.get("agg")
    if agg == "count":
        if set(node) != {"stage", "agg"}:
            raise RuleError("count takes only a stage", path)
    elif agg not in tree.STAGE_AGGREGATES or set(node) != {"stage", "agg", "field"} \
            or not isinstance(node["field"], str):
        raise RuleError(f"a stage value is {{\"stage\", \"agg\": one of {list(tree.STAGE_AGGREGATES)}, \"field\"}}",
                        path)
    if not isinstance(stage, str):
        raise RuleError("a stage value's 'stage' is the name of a stage", path)
    return tree.StageValue(stage, agg, node.get("field"), path)


# ---------------------------------------------------------------- tree -> JSON

def to_json(rule: tree.Rule) -> dict[str, Any]:
    """The rule as the API and the `rules` topic store it."""
    out: dict[str, Any] = {"version": tree.VERSION}
    if rule.partition is not None:
        out["partition"] = {"by": ["symbol", "venue"] if rule.partition.by_venue else ["symbol"]}
        if rule.partition.covers:
            out["partition"]["covers"] = list(rule.partition.covers)
    out["defines"] = [{"name": d.name, "expr": _expr_json(d.expr)} for d in rule.defines]
    if isinstance(rule.body, tree.Pattern):
        out["pattern"] = _pattern_json(rule.body)
    else:
        out["if"] = _expr_json(rule.body)
    if rule.until is not None:
        out["until"] = _expr_json(rule.until)
    out["then"] = rule.then
    return out


def _pattern_json(pattern: tree.Pattern) -> dict[str, Any]:
    out: dict[str, Any] = {"stages": [_stage_json(stage) for stage in pattern.stages]}
    if pattern.within_ms is not None:
        out["within_ms"] = pattern.within_ms
    if pattern.within_type != "first_and_last":
        out["within_type"] = pattern.within_type
    if pattern.skip is not None:
        out["skip"] = {"strategy": pattern.skip.strategy}
        if pattern.skip.stage is not None:
            out["skip"]["stage"] = pattern.skip.stage
    if pattern.emit_at_once:
        out["emit_at_once"] = True
    return out


def _stage_json(stage: tree.Stage) -> dict[str, Any]:
    out: dict[str, Any] = {"name": stage.name}
    if stage.link is not None:
        out["link"] = stage.link
    if (stage.low, stage.high) != (1, 1):
        out["times"] = [stage.low, stage.high]
    if stage.optional:
        out["optional"] = True
    if stage.greedy:
        out["greedy"] = True
    if stage.inner != "relaxed":
        out["inner"] = stage.inner
    return out


def _expr_json(node: tree.Expr) -> Any:
    match node:
        case tree.Number(value=value):
            return value
        case tree.Unary(op=op, operand=operand):
            return {"op": op, "args": [_expr_json(operand)]}
        case tree.Binary(op=op, left=left, right=right):
            return {"op": op, "args": [_expr_json(left), _expr_json(right)]}
        case tree.Abs(arg=arg):
            return {"fn": "abs", "args": [_expr_json(arg)]}
        case tree.ExprWindow(fn=fn, expr=inner, window_ms=window_ms):
            return {"fn": fn, "args": [_expr_json(inner)], "window_ms": window_ms}
        case tree.EventField(field=field):
            return {"event": field}
        case tree.EventIs(field=field, value=value):
            return {"event": field, "is": value}
        case tree.QuoteFn(fn=fn, symbol=symbol, venue=venue) | tree.WindowFn(fn=fn, symbol=symbol, venue=venue):
            out: dict[str, Any] = {"fn": fn}
            if symbol is not None:
                out["symbol"] = symbol
            if venue is not None:
                out["venue"] = venue
            if isinstance(node, tree.WindowFn):
                out["window_ms"] = node.window_ms
            return out
        case tree.Ref(name=name):
            return {"ref": name}
        case tree.StageValue(stage=stage, agg=agg, field=field):
            return {"stage": stage, "agg": agg} if field is None else {"stage": stage, "agg": agg, "field": field}
    assert_never(node)
