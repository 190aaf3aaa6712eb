"""Rule tree -> canonical text: defaults left out, parentheses only where precedence needs them, so
parse(to_text(rule)) == rule for every rule."""
from __future__ import annotations

import json
from typing import assert_never

from . import tree
from .lexer import DURATION_MS

_PRECEDENCE = {"or": 1, "and": 2, "not": 3, **dict.fromkeys(tree.COMPARISONS, 4), "+": 5, "-": 5, "*": 6, "/": 6,
               "neg": 7}


def to_text(rule: tree.Rule) -> str:
    lines = [] if rule.partition is None else [_partition_text(rule.partition)]
    lines += [f"DEFINE {d.name} AS {_expr_text(d.expr)}" for d in rule.defines]
    lines.append(_pattern_text(rule.body) if isinstance(rule.body, tree.Pattern) else f"IF {_expr_text(rule.body)}")
    if rule.until is not None:
        lines.append(f"UNTIL {_expr_text(rule.until)}")
    lines.append(f"THEN {rule.then}")
    return "\n".join(lines)


def _partition_text(partition: tree.Partition) -> str:
    text = "PARTITION BY symbol, venue" if partition.by_venue else "PARTITION BY symbol"
    return text + (" FOR " + ", ".join(map(json.dumps, partition.covers)) if partition.covers else "")


def _pattern_text(pattern: tree.Pattern) -> str:
    parts = []
    for stage in pattern.stages:
        if stage.link is not None:
            parts.append(tree.LINKS[stage.link])
        parts.append(_stage_text(stage))
    text = "PATTERN " + " ".join(parts)
    if pattern.within_ms is not None:
        text += f" WITHIN {_duration_text(pattern.within_ms)}"
        if tree.WITHIN_TYPES[pattern.within_type]:
            text += f" {tree.WITHIN_TYPES[pattern.within_type]}"
    skip = pattern.skip
    if skip is not None:
        text += f" AFTER MATCH {tree.SKIPS[skip.strategy]}" + (f" {skip.stage}" if skip.stage is not None else "")
    if pattern.emit_at_once:
        text += " EMIT AT ONCE"
    return text


def _stage_text(stage: tree.Stage) -> str:
    low, high, optional = stage.low, stage.high, stage.optional
    if (low, high) == (1, None):
        quantifier = "*" if optional else "+"
        optional = False
    elif (low, high) == (1, 1):
        quantifier = ""
    elif high is None:
        quantifier = f"{{{low},}}"
    else:
        quantifier = f"{{{low}}}" if low == high else f"{{{low},{high}}}"
    words = [stage.name + quantifier + ("?" if optional else "")]
    if stage.greedy:
        words.append("GREEDY")
    if tree.INNER[stage.inner]:
        words.append(tree.INNER[stage.inner])
    return " ".join(words)


def _duration_text(ms: int) -> str:
    for unit in ("d", "h", "m", "s"):
        if ms % DURATION_MS[unit] == 0:
            return f"{ms // DURATION_MS[unit]}{unit}"
    return f"{ms}ms"


def _expr_text(node: tree.Expr, parent: int = 0) -> str:
    """`parent` is the precedence of the operator around the node: a looser node gets parentheses."""
    match node:
        case tree.Number(value=value):
            return repr(value)  # a negative literal needs no parentheses: unary minus binds tightest
        case tree.Unary(op=op, operand=operand):
            prec = _PRECEDENCE[op]
            return _grouped(f"{'NOT ' if op == 'not' else '-'}{_expr_text(operand, prec)}", prec, parent)
        case tree.Binary(op=op, left=left, right=right):
            prec = _PRECEDENCE[op]
            # left-associative: a right operand of equal precedence needs parentheses; comparisons never chain
            left_prec = prec + 1 if op in tree.COMPARISONS else prec
            word = op.upper() if op in tree.LOGICAL else op
            return _grouped(f"{_expr_text(left, left_prec)} {word} {_expr_text(right, prec + 1)}", prec, parent)
        case tree.Abs(arg=arg):
            return f"abs({_expr_text(arg)})"
        case tree.QuoteFn(fn=fn, symbol=symbol, venue=venue):
            return f"{fn}({_symbol_text(symbol, venue)})"
        case tree.WindowFn(fn=fn, symbol=symbol, venue=venue, window_ms=window_ms):
            return f"{fn}({', '.join(filter(None, (_symbol_text(symbol, venue), _duration_text(window_ms))))})"
        case tree.ExprWindow(fn=fn, expr=inner, window_ms=window_ms):
            return f"{fn}({_expr_text(inner)}, {_duration_text(window_ms)})"
        case tree.EventField(field=field):
            return f"event.{field}"
        case tree.EventIs(field=field, value=value):
            return _grouped(f"event.{field} == {json.dumps(value)}", _PRECEDENCE["=="], parent)
        case tree.Ref(name=name):
            return name
        case tree.StageValue(stage=stage, agg="count"):
            return f"count({stage})"
        case tree.StageValue(stage=stage, agg="last", field=field):
            return f"{stage}.{field}"
        case tree.StageValue(stage=stage, agg=agg, field=field):
            return f"{agg}({stage}.{field})"
    assert_never(node)


def _grouped(text: str, prec: int, parent: int) -> str:
    return f"({text})" if prec < parent else text


def _symbol_text(symbol: str | None, venue: str | None) -> str:
    """The quoted symbol; for a partitioned rule's key nothing, or its venue ("@binance")."""
    if symbol is None:
        return "" if venue is None else json.dumps(f"@{venue}")
    return json.dumps(symbol if venue is None else f"{symbol}@{venue}")
