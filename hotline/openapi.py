"""The OpenAPI 3.1 description of ``/api/v1`` (served at ``/api/v1/openapi.json``, shown on
the 接口文档 page), built from the running application, not written beside it:

- the paths, methods and path parameters from ``app.url_map`` (every rule of the ``api``
  blueprint), the summaries from the views' docstrings, the groups from their modules;
- the request bodies from the parsers the views call: a view names its parser with
  ``@openapi.body(parse)``; ``parse`` is given a ``hotline.schemas.DescribedBody``, which
  records each field's JSON Schema (type, length, enum values with their labels,
  required) from the same ``Fields`` methods that check a real body. A write endpoint whose
  view names no parser is described with a generic object and says so (``x-derived``);
- the query arguments likewise (``@openapi.query(parse)`` with ``DescribedArgs``);
- who may call (a bearer token, or the login session with ``X-CSRF-Token`` on writes), the
  envelope and the error statuses every endpoint shares (``hotline.api``, ``hotline.errors``).

Answers' ``data`` is not derived (the serialisers are plain functions): the description says
so rather than inventing a shape.
"""

import inspect
import re
import sys

from flask import current_app

from hotline.schemas import DescribedArgs, DescribedBody

#: The blueprint whose rules are described.
BLUEPRINT = "api"
#: ``app.extensions`` key of the endpoints that need no caller (``hotline.api.auth`` puts them
#: there when its blueprint is registered).
PUBLIC_ENDPOINTS = "api_public_endpoints"

_ERRORS = {
    400: "请求格式有误（无效的 JSON、编码或参数）",
    401: "未登录，或 API 令牌无效（AUTH_REQUIRED、AUTH_INVALID）",
    403: "无权执行（角色不符、CSRF 校验失败）",
    404: "请求的对象或地址不存在",
    405: "不支持该请求方法",
    409: "冲突：工单已被他人修改（版本号过期）或状态不允许",
    413: "请求内容过大",
    415: "请求须为 JSON（Content-Type: application/json）",
    422: "字段校验未通过：details 逐字段给出中文原因",
    429: "请求过于频繁（带 Retry-After）",
    503: "数据库暂不可用（带 Retry-After，可用同一 Idempotency-Key 重试）",
}
#: Statuses of every endpoint, and those only a write (a body, a state change) can answer.
_READ_STATUSES = (400, 401, 403, 404, 405, 422, 429, 503)
_WRITE_STATUSES = (409, 413, 415)
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_CONVERTERS = {
    "int": {"type": "integer", "minimum": 0},
    "id": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1},
}
_RULE_ARG = re.compile(r"<(?:(?P<converter>[a-zA-Z_]+)(?:\([^)]*\))?:)?(?P<name>\w+)>")


def body(parse, *, partial=False):
    """Mark a view as reading its JSON body with ``parse(data)`` (the parser it calls, given
    a ``DescribedBody`` here); ``partial``: an update, where no field is required."""

    def mark(view):
        view.openapi_body = (parse, partial)
        return view

    return mark


def query(parse):
    """Mark a view as reading its query arguments with ``parse(args)`` (run here against
    ``DescribedArgs``)."""

    def mark(view):
        view.openapi_query = parse
        return view

    return mark


#: A file download's answer (``@openapi.answers(FILE, media=…)``).
FILE = {"type": "string", "format": "binary"}


def answers(schema, *, media="application/json"):
    """Mark a view whose success answers ``schema`` itself (as ``media``), outside the
    envelope; its errors are still the envelope's."""

    def mark(view):
        view.openapi_answer = (schema, media)
        return view

    return mark


def creates(**parameters):
    """Mark a view that creates something its sub-paths act on (``POST /tickets`` →
    ``/tickets/{number}/…``): ``parameters`` maps the path parameter to where its value is in
    the answer (``number="$response.body#/data/number"``). The description links the answer
    to those operations, so schemathesis's stateful phase creates and then acts on it."""

    def mark(view):
        view.openapi_creates = parameters
        return view

    return mark


def _link(paths, created):
    for path, parameters, operation in created:
        targets = []
        for name, expression in parameters.items():
            prefix = f"{path}/{{{name}}}"
            for other, item in paths.items():
                if other == prefix or other.startswith(prefix + "/"):
                    for target in item.values():
                        targets.append((target["operationId"], {name: expression}))
        links = {
            target: {"operationId": target, "parameters": values} for target, values in targets
        }
        if links:
            operation["responses"]["201"]["links"] = links


def cached(app):
    """``describe(app)``, built once per process (the routes and parsers do not change while
    it runs)."""
    if "openapi" not in app.extensions:
        app.extensions["openapi"] = describe(app)
    return app.extensions["openapi"]


def describe_body(parse, *, partial=False):
    body = DescribedBody()
    parse(body)
    return body.schema(partial=partial)


def describe_query(parse):
    args = DescribedArgs()
    parse(args)
    return [
        {"name": name, "in": "query", "required": False, "schema": schema}
        for name, schema in args.parameters.items()
    ]


def describe(app=None):
    """The OpenAPI 3.1 document of the application's ``/api/v1``."""
    app = app or current_app
    paths = {}
    tags = {}
    created = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint.split(".")[0] != BLUEPRINT:
            continue
        view = app.view_functions[rule.endpoint]
        tag = _tag(rule.endpoint, view, tags)
        path, parameters = _path(rule.rule)
        item = paths.setdefault(path, {})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            operation = _operation(app, rule, view, method, tag, parameters)
            item[method.lower()] = operation
            if method == "POST" and getattr(view, "openapi_creates", None):
                created.append((path, view.openapi_creates, operation))
    _link(paths, created)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "12345 热线 JSON API",
            "version": "1",
            "description": (
                '所有回答为统一信封：成功 {"success": true, "data": …}；失败 '
                '{"success": false, "error": {"code", "message", "details"}}。'
                "本描述由应用的路由表和请求解析器生成。"
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": name, "description": text} for name, text in sorted(tags.items())],
        "paths": paths,
        "components": {"schemas": _components(), "securitySchemes": _security_schemes(app)},
    }


def _tag(endpoint, view, tags):
    parts = endpoint.split(".")
    name = parts[1] if len(parts) > 2 else BLUEPRINT
    if name not in tags:
        module = sys.modules.get(view.__module__)
        tags[name] = _first_paragraph(getattr(module, "__doc__", None))
    return name


def _first_paragraph(doc):
    text = inspect.cleandoc(doc or "").split("\n\n")[0]
    return " ".join(text.split())


def _path(rule):
    parameters = []

    def replace(match):
        name = match.group("name")
        schema = _CONVERTERS.get(match.group("converter") or "", {"type": "string"})
        parameters.append({"name": name, "in": "path", "required": True, "schema": dict(schema)})
        return "{" + name + "}"

    return _RULE_ARG.sub(replace, rule), parameters


def _operation(app, rule, view, method, tag, path_parameters):
    doc = inspect.cleandoc(view.__doc__ or "")
    operation = {
        "operationId": f"{method.lower()}_{rule.endpoint.removeprefix(BLUEPRINT + '.')}",
        "tags": [tag],
        "summary": _first_paragraph(doc)[:120] or rule.endpoint,
        "parameters": list(path_parameters),
    }
    if doc:
        operation["description"] = doc
    parse_query = getattr(view, "openapi_query", None)
    if parse_query is not None and method == "GET":
        operation["parameters"] += describe_query(parse_query)
    unsafe = method in _UNSAFE
    declared = getattr(view, "openapi_body", None)
    if declared is not None:
        parse, partial = declared
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": describe_body(parse, partial=partial)}},
            "x-derived": True,
        }
    elif unsafe and method != "DELETE":
        operation["requestBody"] = {
            "required": False,
            "description": "请求体的字段未从解析器导出：见接口说明",
            "content": {"application/json": {"schema": {"type": "object"}}},
            "x-derived": False,
        }
    if rule.endpoint in app.extensions.get(PUBLIC_ENDPOINTS, ()):
        operation["security"] = []
    elif unsafe:
        operation["security"] = [{"bearer": []}, {"session": [], "csrf": []}]
    else:
        operation["security"] = [{"bearer": []}, {"session": []}]
    # 202: a POST that queues work (a retraining asked for) answers before it is done.
    statuses = ["200", "201", "202"] if method == "POST" else ["200"]
    answer, media = getattr(view, "openapi_answer", None) or (
        {"$ref": "#/components/schemas/Success"},
        "application/json",
    )
    success = {media: {"schema": answer}}
    responses = {status: {"description": "成功", "content": success} for status in statuses}
    for status in sorted(_READ_STATUSES + (_WRITE_STATUSES if unsafe else ())):
        responses[str(status)] = {
            "description": _ERRORS[status],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    operation["responses"] = responses
    return operation


def _components():
    return {
        "Success": {
            "type": "object",
            "required": ["success", "data"],
            "properties": {
                "success": {"const": True},
                "data": {"description": "回答的内容（结构见接口说明，未从序列化函数导出）"},
            },
        },
        "Error": {
            "type": "object",
            "required": ["success", "error"],
            "properties": {
                "success": {"const": False},
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": {"type": "string", "description": "稳定的错误码，供程序判断"},
                        "message": {"type": "string", "description": "中文说明，供人阅读"},
                        "details": {
                            "type": "object",
                            "description": "逐字段的中文原因（字段名 → 原因）",
                        },
                    },
                },
            },
        },
    }


def _security_schemes(app):
    return {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "API 令牌：POST /api/v1/auth/tokens 签发",
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": app.config.get("SESSION_COOKIE_NAME", "session"),
            "description": "浏览器登录会话",
        },
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "登录会话的写操作须回传 CSRF 令牌",
        },
    }
