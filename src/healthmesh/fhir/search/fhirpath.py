"""A parser for the FHIRPath subset that search-parameter expressions use.

It turns an expression into a small tuple AST that :mod:`.compiler` turns into Python
closures. Covered: member paths (with backticks), ``$this``, ``%resource``/``%context``,
string/number/boolean literals, function calls with arguments, indexers, unary ``not``-style
function calls, the ``is``/``as`` type operators, ``|``, ``=``/``!=``, comparison operators,
``and``/``or``/``xor``/``implies``. Anything else raises :class:`Unsupported` so the caller can
fall back to fhirpathpy (which parses the full grammar with ANTLR, too slowly to run per
resource at write time).

AST node shapes::

    ("member", name)              # a name evaluated against the focus
    ("this",) / ("var", name) / ("lit", value)
    ("dot", target, member_or_func)
    ("func", name, (args...))     # function invoked on the focus
    ("index", target, index_expr)
    ("op", symbol, left, right)   # | = != < <= > >= and or xor implies
    ("type", "is"|"as", expr, type_name)
"""

from __future__ import annotations

import re
from typing import Any

Node = tuple[Any, ...]

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<str>'(?:[^'\\]|\\.)*')
    | (?P<num>\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|!~|[()\[\],.|=<>~&+\-*/])
    | (?P<var>%[A-Za-z_][A-Za-z0-9_]*|%`[^`]*`)
    | (?P<this>\$this|\$index|\$total)
    | (?P<id>[A-Za-z_][A-Za-z0-9_]*|`[^`]*`)
    )""",
    re.VERBOSE,
)
_KEYWORD_OPS = {"and", "or", "xor", "implies", "is", "as", "in", "contains", "div", "mod"}
# Binary operator precedence (higher binds tighter), after FHIRPath's grammar.
_PRECEDENCE: dict[str, int] = {
    "implies": 1,
    "or": 2,
    "xor": 2,
    "and": 3,
    "in": 4,
    "contains": 4,
    "=": 5,
    "!=": 5,
    "~": 5,
    "!~": 5,
    "<": 6,
    "<=": 6,
    ">": 6,
    ">=": 6,
    "|": 7,
    "is": 8,
    "as": 8,
}
_SUPPORTED_OPS = {"|", "=", "!=", "<", "<=", ">", ">=", "and", "or", "xor", "implies", "is", "as"}


class Unsupported(ValueError):
    """The expression uses FHIRPath this parser/compiler does not cover."""


def tokenize(text: str) -> list[tuple[str, str]]:
    """Split ``text`` into ``(kind, value)`` tokens; raise :class:`Unsupported` on junk."""
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise Unsupported(f"cannot tokenize at offset {pos}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "id" and value in _KEYWORD_OPS:
            kind = "op"
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.i = 0

    def peek(self) -> tuple[str, str]:
        return self.toks[self.i] if self.i < len(self.toks) else ("eof", "")

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok[0] == "eof" or (value is not None and tok[1] != value):
            raise Unsupported(f"expected {value or 'a token'}")
        self.i += 1
        return tok

    def expression(self, min_prec: int = 0) -> Node:
        left = self.postfix()
        while True:
            kind, value = self.peek()
            prec = _PRECEDENCE.get(value) if kind == "op" else None
            if prec is None or prec <= min_prec:
                return left
            if value not in _SUPPORTED_OPS:
                raise Unsupported(f"operator {value}")
            self.take()
            if value in ("is", "as"):
                left = ("type", value, left, self.type_name())
            else:
                left = ("op", value, left, self.expression(prec))

    def type_name(self) -> str:
        kind, value = self.take()
        if kind != "id":
            raise Unsupported("type name expected")
        name = value.strip("`")
        if self.peek() == ("op", "."):  # qualified: FHIR.Quantity / System.String
            self.take()
            name = name + "." + self.take()[1].strip("`")
        return name

    def postfix(self) -> Node:
        node = self.term()
        while True:
            kind, value = self.peek()
            if (kind, value) == ("op", "."):
                self.take()
                node = ("dot", node, self.invocation())
            elif (kind, value) == ("op", "["):
                self.take()
                index = self.expression()
                self.take("]")
                node = ("index", node, index)
            else:
                return node

    def invocation(self) -> Node:
        kind, value = self.take()
        if kind not in ("id", "op") or (kind == "op" and value not in _KEYWORD_OPS):
            raise Unsupported("member or function expected")
        name = value.strip("`")
        if self.peek() == ("op", "("):
            self.take()
            args: list[Node] = []
            if self.peek() != ("op", ")"):
                args.append(self.function_arg(name))
                while self.peek() == ("op", ","):
                    self.take()
                    args.append(self.function_arg(name))
            self.take(")")
            return ("func", name, tuple(args))
        return ("member", name)

    def function_arg(self, fname: str) -> Node:
        if fname in ("as", "is", "ofType"):
            return ("typename", self.type_name())
        return self.expression()

    def term(self) -> Node:
        kind, value = self.take()
        if kind == "str":
            return ("lit", re.sub(r"\\(.)", r"\1", value[1:-1]))
        if kind == "num":
            return ("lit", float(value) if "." in value else int(value))
        if kind == "this":
            if value != "$this":
                raise Unsupported(value)
            return ("this",)
        if kind == "var":
            return ("var", value[1:].strip("`"))
        if kind == "op" and value == "(":
            inner = self.expression()
            self.take(")")
            return inner
        if kind == "id":
            if value in ("true", "false"):
                return ("lit", value == "true")
            self.i -= 1
            return self.invocation()
        raise Unsupported(f"unexpected token {value}")


def parse(text: str) -> Node:
    """Parse a FHIRPath expression of the supported subset into a tuple AST.

    >>> parse("Patient.name.given")
    ('dot', ('dot', ('member', 'Patient'), ('member', 'name')), ('member', 'given'))
    >>> parse("(Observation.value as Quantity)")[0:2]
    ('type', 'as')
    """
    parser = _Parser(tokenize(text))
    node = parser.expression()
    if parser.peek()[0] != "eof":
        raise Unsupported("trailing tokens")
    return node


def split_union(node: Node) -> list[Node]:
    """The branches of a top-level ``|`` union (a single-element list otherwise)."""
    if node[0] == "op" and node[1] == "|":
        return split_union(node[2]) + split_union(node[3])
    return [node]


def root_name(node: Node) -> str | None:
    """The first member name a branch starts from (``Observation`` in ``Observation.code``)."""
    while node[0] in ("dot", "index", "type"):
        node = node[1] if node[0] in ("dot", "index") else node[2]
    if node[0] == "op" and node[1] == "|":
        return root_name(node[2])
    if node[0] == "op" and node[1] in ("and", "or"):
        return root_name(node[2])
    return node[1] if node[0] == "member" else None
