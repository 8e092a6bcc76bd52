"""The API's own description: ``GET /api/v1/openapi.json`` (OpenAPI 3.1, ``hotline.openapi``),
for any caller with a login or a token. It is the document itself, not wrapped in the
envelope, so tools read it as it is."""

from flask import Blueprint, current_app, jsonify

from hotline import openapi


def create_blueprint():
    bp = Blueprint("openapi", __name__)
    bp.add_url_rule("/openapi.json", view_func=description)
    return bp


@openapi.answers({"type": "object", "required": ["openapi", "paths"]})
def description():
    """本接口的 OpenAPI 3.1 描述（由路由表和请求解析器生成）。"""
    return jsonify(openapi.cached(current_app))
