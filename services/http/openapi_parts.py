"""The pieces OpenAPI operations share: schema builders, parameters, the problem answer and
the HTML page answer.

A schema names the fields every answer has and their types; answers may carry more (a field
added later is not a breaking change). Each route's operation is declared with its handler and
listed in services/api/route_table.py; tests/integration/test_api_conformance.py checks the running
API against the document built from them.
"""

from __future__ import annotations

from typing import Any, Final

from services.http.problems import PROBLEM_JSON

JSON: Final = "application/json"
HTML: Final = "text/html"

STRING: Final = {"type": "string"}
NULLABLE_STRING: Final = {"type": ["string", "null"]}
INTEGER: Final = {"type": "integer"}
BOOLEAN: Final = {"type": "boolean"}
TIME: Final = {"type": "string", "format": "date-time"}
NULLABLE_TIME: Final = {"type": ["string", "null"], "format": "date-time"}
DATE: Final = {"type": "string", "format": "date"}
UUID: Final = {"type": "string", "format": "uuid"}
NULLABLE_UUID: Final = {"type": ["string", "null"], "format": "uuid"}
#: the link to a list's next page, null on the last
PAGE_OF: Final = {"next": NULLABLE_STRING}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An object schema: `required` fields always present, `optional` ones sometimes."""
    return {
        "type": "object",
        "required": sorted(required),
        "properties": {**required, **(optional or {})},
    }


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def json_answer(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def request_body(schema: dict[str, Any]) -> dict[str, Any]:
    """A required JSON request body."""
    return {"required": True, "content": {JSON: {"schema": schema}}}


def query_param(
    name: str, required: bool = False, schema: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A query parameter, a string unless `schema` says otherwise."""
    return {"name": name, "in": "query", "required": required, "schema": schema or STRING}


def path_param(name: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": schema or STRING}


#: a subject's e-mail address or phone number, on the routes that find a subject by one
LOOKUP: Final = (query_param("email"), query_param("phone"))
#: wait until the projection has applied the position of a command's token
MIN_TOKEN: Final = query_param("min_token")

PROBLEM_SCHEMA: Final = obj(
    {"type": STRING, "title": STRING, "status": INTEGER, "detail": STRING},
    {
        "instance": STRING,
        "errors": array(
            obj(
                {"field": STRING, "pointer": STRING, "detail": STRING},
                {"accepted": {}},
            )
        ),
    },
)
PROBLEM: Final[dict[str, Any]] = {
    "description": "problem details (RFC 9457) naming the fields at fault",
    "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
}
HTML_PAGE: Final[dict[str, Any]] = {"description": "an HTML page", "content": {HTML: {}}}


def problem_answer(description: str) -> dict[str, Any]:
    """A problem document answer described in the route's own words."""
    return {**PROBLEM, "description": description}


def html_page(description: str) -> dict[str, Any]:
    """An HTML page answer described in the route's own words."""
    return {**HTML_PAGE, "description": description}
