"""Identifier lookups in a POST body, so an e-mail address or phone number stays out of URLs
(and out of the request lines that proxies log).

Design: docs/developers/design/identities.md
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from schemas.events import BY_IDENTIFIER
from services.http.body import Fields, query_fields, read_json_object
from services.http.problems import field_error, invalid


def path_subject(request: Request) -> str:
    """The path's subject segment; a twin's path has none: it always looks up by identifier."""
    value = request.path_params.get("subject_id", BY_IDENTIFIER)
    return str(value)


def _strings_only(data: dict[str, Any]) -> Fields:
    wrong = [name for name, value in data.items() if not isinstance(value, str)]
    if wrong:
        problem = "must be a string, as in the query string of the GET route"
        raise invalid([field_error(name, problem) for name in sorted(wrong)])
    return Fields(data)


async def lookup_fields(request: Request) -> Fields:
    """A lookup's fields: the query string of a GET, the JSON object body of its POST twin."""
    if request.method != "POST":
        return query_fields(request)
    given = sorted(set(request.query_params.keys()))
    if given:
        problem = "goes in the JSON body of a POST, not in the URL"
        raise invalid([field_error(name, problem) for name in given], 400)
    # imported here: the route table (services/api/access.py) imports the routes' modules
    from services.api.guard import require_access

    fields = _strings_only(await read_json_object(request))
    # the guard saw no fields; what the body asks for may need more (`at` needs audit)
    route = request.scope.get("route")
    require_access(request, getattr(route, "path", request.url.path), fields.data.keys())
    return fields


def body_schema(parameters: list[dict[str, Any]]) -> dict[str, Any]:
    """A twin's request body from its GET operation's query parameters: the same names, each
    a string (a whole number as digits), required where the parameter is."""
    properties: dict[str, Any] = {}
    required = []
    for param in parameters:
        if param.get("in") != "query":
            continue
        schema = dict(param.get("schema") or {"type": "string"})
        if schema.get("type") == "integer":
            schema = {"type": "string", "pattern": "^-?[0-9]{1,18}$"}
        properties[param["name"]] = schema
        if param.get("required"):
            required.append(param["name"])
    return {
        "type": "object",
        "additionalProperties": False,
        "required": sorted(required),
        "properties": properties,
    }


def twin_operation(get: dict[str, Any], get_path: str) -> dict[str, Any]:
    """The POST twin's OpenAPI operation from the GET route's (already complete) one."""
    parameters = get.get("parameters", [])
    return {
        **{k: v for k, v in get.items() if k not in ("parameters", "summary")},
        "summary": f"GET {get_path} with its query fields in a JSON body: no address in the URL",
        "parameters": [p for p in parameters if p.get("in") not in ("query", "path")],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": body_schema(parameters)}},
        },
    }
