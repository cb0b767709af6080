"""One place where what a person typed ("The Matrix", "Heat", "Fellowship", "pulp fictoin") becomes
catalog items, for every tool that takes an item name and for title literals in the SQL tools.

The catalog's grounder does the matching (article inversion, trailing years, subtitles, franchise
phrases, distinctive words, typos, case and accents; see :mod:`recai.data.grounding`). This module
adds the agent's policy on top:

- an ambiguous name ("Heat": 1995 and 2013) resolves to the most interacted item, and the note says
  which one was taken and what else it could have meant, so the trace and the reply can say so;
- a name that matches nothing is never an empty result: :class:`NotInCatalogError` carries the names and
  the closest titles, and the turn answers "I could not find X in the catalog" instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlglot import exp

from recai.agent.tools.base import ToolError

if TYPE_CHECKING:
    from recai.data.catalog import Catalog


class NotInCatalogError(ToolError):
    """Items the user named that the catalog does not have. Not a planning mistake: replanning cannot
    fix it, so the turn reports it instead.

    Args:
        missing: each name the catalog lacks, with the closest titles it has.
        tool: the tool that looked the names up.
    """

    def __init__(self, missing: dict[str, list[str]], tool: str) -> None:
        self.missing = missing  # the name as written -> the closest catalog titles
        self.tool = tool
        parts = [
            f"'{name}' is not in the catalog" + (f" (closest: {'; '.join(near)})" if near else "")
            for name, near in missing.items()
        ]
        super().__init__(f"{tool}: " + "; ".join(parts))

    def sentence(self) -> str:
        """What the user is told (titles come from the catalog, so the reply may name them)."""
        names = ", ".join(f"“{name}”" for name in self.missing)
        near = [t for titles in self.missing.values() for t in titles[:2]]
        closest = f" The closest titles I have are {', '.join(near)}." if near else ""
        return f"I could not find {names} in the catalog.{closest}"


@dataclass
class Resolution:
    """Catalog positions for the names that resolved, notes on how, and the names that did not, so a tool
    can go on with what resolved and the reply can say what did not.

    Attributes:
        positions: catalog positions of the names that resolved.
        notes: how each name was read ("'Heat' read as Heat (1995)").
        missing: each name that did not resolve, with the closest titles.
    """

    positions: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)


def resolve_titles(catalog: Catalog, names: list[str]) -> Resolution:
    """Resolve each name (see the module docstring); duplicates keep their first position."""
    out = Resolution()
    for name in names:
        g = catalog.ground(str(name))
        if not g.resolved:
            out.missing[str(name)] = g.did_you_mean(3)
            continue
        position = int(catalog.index_of([g.item_id])[0])
        if position in out.positions:
            continue
        out.positions.append(position)
        shown = catalog.display_title(position)
        if g.ambiguous:
            others = [
                m.title for m in g.alternatives[1:4] if m.item_id != g.item_id and m.score >= g.score - 2
            ]
            out.notes.append(
                f"'{name}' is ambiguous: took the most interacted, {shown}"
                + (f" (also: {'; '.join(others)})" if others else "")
            )
        elif g.score < 100 or title_differs(name, shown):
            out.notes.append(f"'{name}' read as {shown}")
    return out


def title_differs(typed: str, shown: str) -> bool:
    return typed.strip().lower() != shown.strip().lower()


def resolve_or_raise(catalog: Catalog, names: list[str], tool: str, *, partial: bool = False) -> Resolution:
    """:func:`resolve_titles`, raising :class:`NotInCatalogError` when nothing resolved (or, without
    ``partial``, when anything did not)."""
    out = resolve_titles(catalog, names)
    if out.missing and (not partial or not out.positions):
        raise NotInCatalogError(out.missing, tool)
    return out


def ground_title_literals(tree: exp.Expression, catalog: Catalog, tool: str) -> list[str]:
    """Rewrite string literals compared with the title column (``=``, ``<>``, ``IN``) into the catalog's
    exact titles, so ``title = 'Heat'`` finds "Heat (1995)"; a case-sensitive ``LIKE`` on the title
    becomes ``ILIKE``. Returns notes; raises NotInCatalogError for names the catalog lacks."""
    title = catalog.title_column.lower()
    notes: list[str] = []
    missing: dict[str, list[str]] = {}

    def is_title(node: exp.Expression) -> bool:
        inner = node.this if isinstance(node, (exp.Lower, exp.Upper, exp.Trim)) else node
        return isinstance(inner, exp.Column) and inner.name.lower() == title

    def fix(literal: exp.Literal, lowered: bool) -> None:
        value = str(literal.this)
        resolution = resolve_titles(catalog, [value])
        if resolution.missing:
            missing.update(resolution.missing)
            return
        exact = str(catalog.items[catalog.title_column].iloc[resolution.positions[0]])
        literal.set("this", exact.lower() if lowered else exact)
        notes.extend(resolution.notes)

    for node in list(tree.walk()):
        if isinstance(node, (exp.EQ, exp.NEQ)):
            for side, other in ((node.this, node.expression), (node.expression, node.this)):
                if is_title(side) and isinstance(other, exp.Literal) and other.is_string:
                    fix(other, isinstance(side, exp.Lower))
        elif isinstance(node, exp.In) and is_title(node.this):
            for value in node.expressions:
                if isinstance(value, exp.Literal) and value.is_string:
                    fix(value, isinstance(node.this, exp.Lower))
        elif isinstance(node, exp.Like) and is_title(node.this):
            node.replace(exp.ILike(this=node.this.copy(), expression=node.expression.copy()))
    if missing:
        raise NotInCatalogError(missing, tool)
    return notes
