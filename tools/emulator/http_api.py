"""The template's HTTP API as API Gateway builds it: routes, their functions and authorization.

Read from the SAM template itself (each function's ``HttpApi`` events, the API's ``Auth``), never
from a list kept here: a route added to template.yaml is served by ``make api`` as it is deployed.
Routes are matched as API Gateway matches them: the most specific route wins (a literal segment
over a path variable, a path variable over a greedy ``{proxy+}``, a method over ``ANY``), and
``$default`` takes what nothing else does.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from tools.emulator import sam_template
from tools.emulator.invoke_inputs import InputError

HTTP_API_TYPE = "AWS::Serverless::HttpApi"
IMPLICIT_API = "ServerlessHttpApi"
"""What SAM calls the API it creates for HttpApi events that name no ``ApiId``."""
DEFAULT_ROUTE = "$default"
_VARIABLE = re.compile(r"\{([A-Za-z0-9_.-]+)(\+?)\}")


@dataclass(frozen=True)
class JwtAuthorizer:
    """A JWT authorizer as the template declares it; issuer and audience as written (they are
    often intrinsics, resolved only at deploy time)."""

    name: str
    identity_source: str
    issuer: Any
    audience: Any
    scopes: tuple[str, ...] = ()
    """The authorizer's own ``AuthorizationScopes``: what a route that names none requires."""

    @property
    def header(self) -> str:
        """The request header that carries the token, lower-cased as API Gateway sees it."""
        prefix = "$request.header."
        if not self.identity_source.startswith(prefix):
            raise InputError(
                f"authorizer {self.name}: IdentitySource {self.identity_source!r} is not a "
                "request header; only $request.header.* is served locally"
            )
        return self.identity_source.removeprefix(prefix).lower()


@dataclass(frozen=True)
class Route:
    """One route: ``GET /items/{item_id}`` (or ``$default``), its function, what it requires."""

    method: str
    path: str
    function_id: str
    authorizer: JwtAuthorizer | None
    scopes: tuple[str, ...]

    @property
    def key(self) -> str:
        return DEFAULT_ROUTE if self.path == DEFAULT_ROUTE else f"{self.method} {self.path}"

    def path_parameters(self, raw_path: str) -> dict[str, str] | None:
        """The path variables if ``raw_path`` matches (values decoded), else None."""
        if self.path == DEFAULT_ROUTE:
            return {}
        expression = ""
        position = 0
        names: dict[str, str] = {}
        for match in _VARIABLE.finditer(self.path):
            expression += re.escape(self.path[position : match.start()])
            group = _group(match.group(1))
            names[group] = match.group(1)
            expression += f"(?P<{group}>.+)" if match.group(2) else f"(?P<{group}>[^/]+)"
            position = match.end()
        expression += re.escape(self.path[position:])
        found = re.fullmatch(expression, raw_path)
        if found is None:
            return None
        return {names[g]: urllib.parse.unquote(v) for g, v in found.groupdict().items()}

    def specificity(self) -> tuple[int, int, int, int]:
        """Larger is more specific: not ``$default``, no greedy variable, literal segments,
        an exact method."""
        if self.path == DEFAULT_ROUTE:
            return (0, 0, 0, 0)
        segments = self.path.strip("/").split("/")
        greedy = any(s.endswith("+}") for s in segments)
        literals = sum(1 for s in segments if not _VARIABLE.fullmatch(s))
        return (1, 0 if greedy else 1, literals, 0 if self.method == "ANY" else 1)


def _group(name: str) -> str:
    return "v_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass(frozen=True)
class HttpApi:
    """One HTTP API of the template: its logical id and its routes."""

    logical_id: str
    routes: tuple[Route, ...]

    def match(self, method: str, raw_path: str) -> tuple[Route, dict[str, str]] | None:
        """The route API Gateway would pick for this request, and its path parameters."""
        candidates = []
        for route in self.routes:
            if route.method not in (method, "ANY") and route.path != DEFAULT_ROUTE:
                continue
            parameters = route.path_parameters(raw_path)
            if parameters is not None:
                candidates.append((route.specificity(), route, parameters))
        if not candidates:
            return None
        _, route, parameters = max(candidates, key=lambda candidate: candidate[0])
        return route, parameters

    @property
    def authorizers(self) -> dict[str, JwtAuthorizer]:
        return {r.authorizer.name: r.authorizer for r in self.routes if r.authorizer}


def _api_properties(template: dict[str, Any], logical_id: str) -> dict[str, Any]:
    """The API's properties over ``Globals.HttpApi``, as SAM merges them (a shallow merge)."""
    merged = dict(template.get("Globals", {}).get("HttpApi", {}))
    resource = template["Resources"].get(logical_id, {})
    merged.update(resource.get("Properties", {}))
    return merged


def _authorizers(logical_id: str, properties: dict[str, Any]) -> dict[str, JwtAuthorizer]:
    authorizers: dict[str, JwtAuthorizer] = {}
    for name, spec in properties.get("Auth", {}).get("Authorizers", {}).items():
        if "JwtConfiguration" not in spec:
            raise InputError(
                f"{logical_id}: authorizer {name} is not a JWT authorizer; only JWT authorizers "
                "are enforced locally"
            )
        configuration = spec["JwtConfiguration"]
        authorizers[name] = JwtAuthorizer(
            name=name,
            identity_source=str(spec.get("IdentitySource", "$request.header.Authorization")),
            issuer=configuration.get("issuer"),
            audience=configuration.get("audience"),
            scopes=tuple(spec.get("AuthorizationScopes", ())),
        )
    return authorizers


def _api_of(event: dict[str, Any]) -> str:
    api_id = event.get("Properties", {}).get("ApiId")
    if api_id is None:
        return IMPLICIT_API
    if isinstance(api_id, dict) and isinstance(api_id.get("Ref"), str):
        return str(api_id["Ref"])
    raise InputError(f"HttpApi event ApiId {api_id!r} must be a Ref to an HttpApi of the template")


def http_apis(template: dict[str, Any]) -> dict[str, HttpApi]:
    """Every HTTP API of the template that has a route, by logical id."""
    routes: dict[str, list[Route]] = {}
    authorizers: dict[str, dict[str, JwtAuthorizer]] = {}
    for function_id, resource in sorted(sam_template.functions(template).items()):
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") != "HttpApi":
                continue
            api_id = _api_of(event)
            api = _api_properties(template, api_id)
            if api_id not in authorizers:
                authorizers[api_id] = _authorizers(api_id, api)
            routes.setdefault(api_id, []).append(
                _route(function_id, event.get("Properties", {}), api, authorizers[api_id])
            )
    return {api_id: HttpApi(api_id, tuple(found)) for api_id, found in routes.items()}


def _route(
    function_id: str,
    properties: dict[str, Any],
    api: dict[str, Any],
    authorizers: dict[str, JwtAuthorizer],
) -> Route:
    method = str(properties.get("Method", "ANY")).upper()
    method = "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method
    path = str(properties.get("Path", DEFAULT_ROUTE))
    auth = properties.get("Auth", {})
    name = auth.get("Authorizer", api.get("Auth", {}).get("DefaultAuthorizer"))
    if name in (None, "NONE"):
        return Route(method, path, function_id, None, ())
    if name not in authorizers:
        raise InputError(f"{function_id}: route {method} {path} names unknown authorizer {name}")
    authorizer = authorizers[name]
    scopes = tuple(auth.get("AuthorizationScopes", authorizer.scopes))
    return Route(method, path, function_id, authorizer, scopes)


def the_api(template: dict[str, Any], logical_id: str | None = None) -> HttpApi:
    """The template's HTTP API (the one named, when it has several)."""
    apis = http_apis(template)
    if logical_id is not None:
        if logical_id not in apis:
            raise InputError(
                f"no HTTP API {logical_id!r} with routes; the template has {sorted(apis)}"
            )
        return apis[logical_id]
    if len(apis) != 1:
        raise InputError(
            f"the template has {len(apis)} HTTP APIs with routes: name one ({sorted(apis)})"
        )
    return next(iter(apis.values()))
