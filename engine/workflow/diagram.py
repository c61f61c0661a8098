"""A workflow as a Mermaid state diagram, for the docs, the web pages and ``workflow show --mermaid``.

Drawn by pytransitions' own GraphMachine (mermaid engine, no Graphviz needed), so the picture
is of the same states and transitions the engine's machine is built from.
"""

from __future__ import annotations

from typing import Any

from transitions import State
from transitions.extensions import GraphMachine

from engine.workflow.model import PREVIOUS, Workflow


class _LabelledState(State):
    """A state that carries a display label (plain ``State`` refuses the ``label`` keyword)."""

    def __init__(self, *args: Any, label: str | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if label:
            self.label = label


class _DiagramMachine(GraphMachine):
    state_cls = _LabelledState


class _Dummy:
    """GraphMachine draws through a model; with ``model=None`` one has to be added for drawing."""


def _clean(text: str) -> str:
    # Mermaid ends a label at ':' and breaks on quotes or semicolons inside one.
    return text.replace('"', "'").replace(":", "：").replace(";", "；")


def _edges(wf: Workflow) -> list[dict[str, Any]]:
    edges: list[dict[str, Any]] = []
    # resume goes back to wherever the run was suspended from: draw it to every such stage
    suspended_from: dict[str, list[str]] = {}
    for t in wf.transitions:
        if t.kind == "suspend" and t.dest:
            for src in t.sources:
                suspended_from.setdefault(t.dest, []).append(src)
    for t in wf.transitions:
        label = _clean(str(t.title))
        for src in t.sources:
            gates = wf.stage(src).gates if t.kind == "advance" else ()
            text = label + (" [" + " & ".join(g.id for g in gates) + "]" if gates else "")
            text += " (auto)" if t.auto else ""
            if t.dest is None:
                edges.append({"trigger": t.trigger, "source": src, "dest": None, "label": text})
            elif t.dest == PREVIOUS:
                for back in dict.fromkeys(suspended_from.get(src, [])):
                    edges.append({"trigger": t.trigger, "source": src, "dest": back, "label": text})
            else:
                edges.append({"trigger": t.trigger, "source": src, "dest": t.dest, "label": text})
    return edges


def mermaid(wf: Workflow) -> str:
    """A Mermaid ``stateDiagram-v2`` of ``wf``: stage titles as labels, gate ids on gated advances."""
    states = [{"name": s.id, "label": _clean(str(s.title))} for s in wf.stages]
    machine = _DiagramMachine(
        model=None,
        states=states,
        initial=wf.initial,
        transitions=_edges(wf),
        auto_transitions=False,
        graph_engine="mermaid",
        title=_clean(str(wf.title)) + f" ({wf.key})",
    )
    dummy = _Dummy()
    machine.add_model(dummy, initial=wf.initial)
    source: str = dummy.get_graph().draw(None)  # type: ignore[attr-defined]
    # the dummy sits in the initial state; a diagram of the workflow has no current state
    source = source.replace(f"Class {wf.initial} s_active", f"Class {wf.initial} s_default")
    lines = source.rstrip("\n").split("\n")
    for entry in wf.entry_stages:
        lines.append(f"  [*] --> {entry}")
    for stage in wf.stages:
        if stage.terminal:
            lines.append(f"  {stage.id} --> [*]")
    return "\n".join(lines) + "\n"
