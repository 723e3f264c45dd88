"""ComfyUI API-format graph → UI (graph, "workflow") format, from the server's node definitions.

The UI format is LiteGraph's: nodes with positions, typed input sockets and output slots, widget values
stored *by position*, and a link table ``[id, from node, from slot, to node, to slot, type]``. Which
inputs are sockets and which are widgets, the widget order, and the slot types all come from
``/object_info``; the frontend's extra widgets are added the way it adds them (``control_after_generate``
seeds get a ``"fixed"`` value after them, ``image_upload`` loaders an ``"image"`` upload widget).
Positions are a layered layout: each node one column right of its furthest input.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pixelbuild.errors import UsageError

UI_VERSION = 0.4
_WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
_COLUMN = 360
_WIDTH = 315


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str | int) and isinstance(value[1], int)


def _inputs(definition: Mapping[str, Any]) -> list[tuple[str, Any, dict[str, Any]]]:
    """The node's visible inputs in the frontend's order: required then optional (``input_order`` when given)."""
    spec = definition.get("input") or {}
    order = definition.get("input_order") or {}
    out = []
    for group in ("required", "optional"):
        entries = spec.get(group) or {}
        for name in order.get(group) or list(entries):
            entry = entries.get(name)
            if not isinstance(entry, list) or not entry:
                continue
            options = entry[1] if len(entry) > 1 and isinstance(entry[1], dict) else {}
            out.append((name, entry[0], options))
    return out


def _is_widget(kind: Any, options: Mapping[str, Any]) -> bool:
    if options.get("forceInput"):
        return False
    return isinstance(kind, list) or kind in _WIDGET_TYPES


def _type_name(kind: Any) -> str:
    return "COMBO" if isinstance(kind, list) else str(kind)


def _default(kind: Any, options: Mapping[str, Any]) -> Any:
    if "default" in options:
        return options["default"]
    if isinstance(kind, list):
        return kind[0] if kind else ""
    if kind == "COMBO":
        values = options.get("options") or [""]
        return values[0]
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(str(kind))


def to_ui(graph: Mapping[str, Mapping[str, Any]], object_info: Mapping[str, Any]) -> dict[str, Any]:
    """The UI-format workflow of the API-format ``graph``; a ``UsageError`` when a node's class is not in
    ``object_info`` (its sockets and widget order cannot be known then)."""
    missing = sorted({node["class_type"] for node in graph.values() if node["class_type"] not in object_info})
    if missing:
        raise UsageError(
            f"--ui: the node definitions have no {', '.join(missing)}; the UI format needs each node's sockets and "
            "widget order, so it cannot be derived faithfully (is that custom node installed on the server?)"
        )
    ids = _node_ids(graph)
    depth = _layers(graph)
    order = sorted(graph, key=lambda n: (depth[n], ids[n]))
    links: list[list[Any]] = []
    out_links: dict[tuple[str, int], list[int]] = {}
    nodes: list[dict[str, Any]] = []
    column_y: dict[int, int] = {}
    for position, node_id in enumerate(order):
        node = graph[node_id]
        definition = object_info[node["class_type"]]
        sockets, widgets = _sockets_and_widgets(definition, node["inputs"])
        _link_sockets(node_id, sockets, graph, object_info, ids, links, out_links)
        height = _node_height(definition, sockets, widgets)
        column = depth[node_id]
        y = column_y.get(column, 60)
        column_y[column] = y + height + 40
        entry: dict[str, Any] = {
            "id": ids[node_id],
            "type": node["class_type"],
            "pos": [60 + column * _COLUMN, y],
            "size": [_WIDTH, height],
            "flags": {},
            "order": position,
            "mode": 0,
            "inputs": sockets,
            "outputs": [],  # once every link is known, below
            "properties": {"Node name for S&R": node["class_type"]},
            "widgets_values": widgets,
        }
        title = (node.get("_meta") or {}).get("title")
        if isinstance(title, str) and title != definition.get("display_name", node["class_type"]):
            entry["title"] = title
        nodes.append(entry)
    by_id = {entry["id"]: entry for entry in nodes}
    for node_id in graph:
        by_id[ids[node_id]]["outputs"] = _outputs(object_info[graph[node_id]["class_type"]], node_id, out_links)
    return {
        "last_node_id": max(ids.values(), default=0),
        "last_link_id": len(links),
        "nodes": sorted(nodes, key=lambda entry: entry["id"]),
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}},
        "version": UI_VERSION,
    }


def _node_ids(graph: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """The UI's numeric id of each node: its own when numeric, else the next free number, in graph order."""
    ids: dict[str, int] = {}
    taken = {int(node_id) for node_id in graph if node_id.isdigit()}
    next_free = max(taken, default=0) + 1
    for node_id in graph:
        if node_id.isdigit():
            ids[node_id] = int(node_id)
        else:
            ids[node_id] = next_free
            next_free += 1
    return ids


def _layers(graph: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """Each node's column: one right of its deepest source (a ``UsageError`` on a cycle)."""
    depth: dict[str, int] = {}

    def layer(node_id: str, trail: frozenset[str] = frozenset()) -> int:
        if node_id in depth:
            return depth[node_id]
        if node_id in trail:
            raise UsageError(f"--ui: the graph has a cycle through node {node_id}")
        sources = [str(v[0]) for v in graph[node_id]["inputs"].values() if _is_link(v) and str(v[0]) in graph]
        depth[node_id] = 1 + max((layer(s, trail | {node_id}) for s in sources), default=-1)
        return depth[node_id]

    for node_id in graph:
        layer(node_id)
    return depth


def _sockets_and_widgets(
    definition: Mapping[str, Any], values: Mapping[str, Any]
) -> tuple[list[dict[str, Any]], list[Any]]:
    """A node's input sockets (links not yet filled in) and its widget values, in the frontend's order."""
    sockets: list[dict[str, Any]] = []
    widgets: list[Any] = []
    for name, kind, options in _inputs(definition):
        value = values.get(name)
        if not _is_widget(kind, options):
            sockets.append({"name": name, "type": _type_name(kind), "link": None})
            continue
        if _is_link(value):
            sockets.append({"name": name, "type": _type_name(kind), "widget": {"name": name}, "link": None})
            widgets.append(_default(kind, options))
        else:
            widgets.append(_default(kind, options) if value is None else value)
        if options.get("control_after_generate"):
            widgets.append("fixed")  # the seed stays what the graph says
        if options.get("image_upload"):
            widgets.append("image")
    return sockets, widgets


def _link_sockets(
    node_id: str,
    sockets: list[dict[str, Any]],
    graph: Mapping[str, Mapping[str, Any]],
    object_info: Mapping[str, Any],
    ids: Mapping[str, int],
    links: list[list[Any]],
    out_links: dict[tuple[str, int], list[int]],
) -> None:
    """Add a link for each of the node's sockets that its graph inputs connect, to ``links`` and ``out_links``."""
    values = graph[node_id]["inputs"]
    for socket_index, socket in enumerate(sockets):
        value = values.get(socket["name"])
        if _is_link(value) and str(value[0]) in graph:
            source, slot = str(value[0]), int(value[1])
            source_outputs = object_info[graph[source]["class_type"]].get("output") or []
            kind = source_outputs[slot] if slot < len(source_outputs) else socket["type"]
            link_id = len(links) + 1
            links.append([link_id, ids[source], slot, ids[node_id], socket_index, _type_name(kind)])
            out_links.setdefault((source, slot), []).append(link_id)
            socket["link"] = link_id


def _node_height(definition: Mapping[str, Any], sockets: list[dict[str, Any]], widgets: list[Any]) -> int:
    """How tall the frontend draws a node: a row per socket or output, per widget, more for multiline text."""
    height = 46 + 22 * max(len(sockets), len(definition.get("output") or [])) + 26 * len(widgets)
    return height + sum(70 for _n, kind, o in _inputs(definition) if kind == "STRING" and o.get("multiline"))


def _outputs(
    definition: Mapping[str, Any], node_id: str, out_links: Mapping[tuple[str, int], list[int]]
) -> list[dict[str, Any]]:
    """A node's output slots and the links leaving each."""
    types = definition.get("output") or []
    names = definition.get("output_name") or types
    return [
        {
            "name": str(names[slot]),
            "type": _type_name(kind),
            "links": out_links.get((node_id, slot), []),
            "slot_index": slot,
        }
        for slot, kind in enumerate(types)
    ]
