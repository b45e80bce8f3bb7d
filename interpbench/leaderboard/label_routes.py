"""What the leaderboard says about labelling routes and about metrics that cannot apply.

- `route_note`: which route produced each row's labels (the label columns read the primary
  route of `record["label_routes"]`; docs/metrics.md#label-routes).
- `unavailable_text`: the cell text of a metric a record marks as not applicable
  (`record["unavailable"]`, e.g. multimodality of an image-only representation), so the table
  says why a value is missing instead of a bare "–".
"""

from __future__ import annotations

ROUTE_WORDS = {"text": "text tower", "decoder": "decoder (direct path)", "images": "top images (judge)"}


def primary_route(record: dict) -> str | None:
    """The route of a record's top-level label metrics; results without label_routes were
    labelled through the text tower (the only route before), or not at all."""
    routes = record.get("label_routes")
    if isinstance(routes, dict):
        return routes.get("primary")
    return "text" if record["model"].get("has_text", True) and "labelled_pct" in record["metrics"] else None


def route_note(records: list[dict]) -> str:
    """One sentence: the route each model's label columns come from."""
    by_route: dict[str, list[str]] = {}
    for r in records:
        route = primary_route(r)
        if route:
            by_route.setdefault(route, []).append(f"`{r['model']['spec']}`")
    if not by_route:
        return ""
    parts = [f"{ROUTE_WORDS.get(k, k)}: {', '.join(sorted(set(v)))}" for k, v in sorted(by_route.items())]
    return ("Label columns (label corr., GT label acc., CF select.) use each row's primary labels, by route: "
            + "; ".join(parts) + " (docs/metrics.md#label-routes; the other routes are in each results file).")


def unavailable_text(record: dict, key: str) -> str | None:
    """'n/a: image-only' when the record says why `key` was not measured, else None."""
    why = (record.get("unavailable") or {}).get(key)
    return f"n/a: {why}" if isinstance(why, str) and why else None
