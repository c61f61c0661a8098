"""Error pages in the site's own layout and language: a Chinese "页面不存在" with the navigation
instead of Starlette's bare English "Not Found" (unknown addresses, 404/403 from the engine,
and a 500 that never shows a traceback)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from engine import set_language, tr
from web.context import AppState, language

TITLES = {
    400: ("请求有误", "Bad request"), 403: ("无权访问", "Forbidden"), 404: ("页面不存在", "Not found"),
    405: ("不支持的请求方式", "Method not allowed"), 409: ("已被他人修改", "Changed by someone else"),
    500: ("服务器出错", "Server error"), 503: ("数据库暂不可用", "Database unavailable"),
}


def title(status: int) -> str:
    pair = TITLES.get(status, ("出错了", "Error"))
    return tr(*pair)


def page(request: Request, status: int, message: str) -> Response:
    set_language(language(request))
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message or title(status)}, status)
    state: AppState = request.app.state.rollout
    return state.templates.TemplateResponse(request, "error.html", {
        "user": None, "nav": True, "csrf": "", "flash": None, "path": request.url.path, "message": message,
        "status": status, "title": title(status)}, status_code=status)


async def http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = {404: tr("没有这个页面，请从导航重新进入", "there is no such page: start again from the navigation"),
               405: tr("此地址不支持这种请求", "this address does not take that request")}.get(status, "")
    return page(request, status, message)


async def server_error(request: Request, _exc: Exception) -> Response:
    return page(request, 500, tr("服务器处理请求时出错，已记录；请稍后重试", "the server failed on this request: try again later"))
