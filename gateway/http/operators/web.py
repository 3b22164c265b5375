"""The operators' HTTP layer: session and CSRF middlewares, the login and logout handlers, roles.

Nothing but the login page answers without a session: an HTML page redirects to the login, any
other route answers 401 (problem+json). Every request whose method changes state carries the
session's CSRF token, in the ``X-CSRF-Token`` header (fetch) or the ``csrf_token`` form field;
the login form, before there is a session, carries a token that must match its own cookie.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlencode

from aiohttp import web

from gateway.domain.operators import Role
from gateway.services.operator_auth import OperatorAuth, current_session, log_in, log_out

from ..operations import OPERATOR, PUBLIC, Operation, content, no_body, problem
from ..problems import Problem
from . import pages
from .context import OPERATOR_AUTH, SESSION, client_address

SESSION_COOKIE = "smsgw_session"
LOGIN_COOKIE = "smsgw_login"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
LOGIN, LOGOUT = "login", "logout"  # route names

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Gate:
    """Where the operators' app is mounted and which of its routes are HTML pages."""

    base: str  # "/dashboard"
    pages: frozenset[str]  # route names: without a session they redirect to the login page

    @property
    def login_path(self) -> str:
        return f"{self.base}/login"

    @property
    def home_path(self) -> str:
        return f"{self.base}/"

    def safe_next(self, candidate: str) -> str:
        """Where to go after login: a page of ours, never another site."""
        if candidate.startswith(self.home_path) and "//" not in candidate and "\\" not in candidate:
            if not candidate.startswith(self.login_path):
                return candidate
        return self.home_path


GATE = web.AppKey("operator_gate", Gate)


def _problem(request: web.Request, status: int, title: str, detail: str, slug: str) -> web.Response:
    return Problem(status, title, detail, slug=slug).response(request.path)


def _route(request: web.Request) -> str | None:
    return request.match_info.route.name


def _secure(request: web.Request, auth: OperatorAuth) -> bool:
    return auth.secure_cookies or request.secure


def _redirect(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location, "Cache-Control": "no-store"})


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    auth, gate = request.config_dict[OPERATOR_AUTH], request.config_dict[GATE]
    token = request.cookies.get(SESSION_COOKIE)
    session = await current_session(auth, token)
    if session is not None:
        request[SESSION] = session
        return await handler(request)
    if _route(request) == LOGIN:
        return await handler(request)
    if request.method == "GET" and _route(request) in gate.pages:
        query = {"next": request.path_qs, **({"expired": "1"} if token else {})}
        response = _redirect(f"{gate.login_path}?{urlencode(query)}")
    else:
        response = _problem(
            request, 401, "Sign in first", "this needs an operator's session", "unauthenticated"
        )
    if token:
        response.del_cookie(SESSION_COOKIE, path=gate.base)
    return response


async def _sent_token(request: web.Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header is not None:
        return header
    if request.content_type in FORMS:
        return str((await request.post()).get(CSRF_FIELD, ""))
    return ""


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.method in SAFE_METHODS:
        return await handler(request)
    session = request.get(SESSION)
    if _route(request) == LOGIN:  # the login form's own token, even from a tab opened before a login
        expected = request.cookies.get(LOGIN_COOKIE, "")
    else:
        expected = session.csrf_token if session is not None else ""
    sent = await _sent_token(request)
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        return _problem(
            request,
            403,
            "CSRF token missing or wrong",
            f"send the page's token in the {CSRF_HEADER} header or the {CSRF_FIELD} form field",
            "csrf",
        )
    return await handler(request)


MIDDLEWARES = (session_middleware, csrf_middleware)


def requires(role: Role) -> Callable[[Handler], Handler]:
    """Decorate a handler that only operators with ``role`` (or above) may use."""

    def decorate(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            session = request.get(SESSION)
            if session is None:
                return _problem(
                    request, 401, "Sign in first", "this needs an operator's session", "unauthenticated"
                )
            operator = session.operator
            if not operator.role.allows(role):
                detail = f"this needs the role {role.label}; {operator.username} is {operator.role.label}"
                return _problem(request, 403, "Not allowed", detail, "forbidden")
            return await handler(request)

        return checked

    return decorate


def _login_response(
    request: web.Request, status: int, *, error: str | None = None, username: str = "", next_path: str = ""
) -> web.Response:
    gate = request.config_dict[GATE]
    lang = pages.language(request)
    csrf = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(32)
    notice = None
    if "bye" in request.query:
        notice = pages.TEXTS[lang]["logged_out"]
    elif "expired" in request.query:
        notice = pages.TEXTS[lang]["expired"]
    body = pages.login_page(
        lang,
        csrf,
        error=error,
        notice=notice,
        username=username,
        next_path=next_path or request.query.get("next", ""),
    )
    response = web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
    )
    if request.cookies.get(LOGIN_COOKIE) != csrf:  # a browser-session cookie, for this form only
        response.set_cookie(
            LOGIN_COOKIE,
            csrf,
            path=gate.login_path,
            httponly=True,
            samesite="Strict",
            secure=_secure(request, request.config_dict[OPERATOR_AUTH]),
        )
    pages.remember_language(request, response, gate.base)
    return response


async def login_form(request: web.Request) -> web.Response:
    gate = request.config_dict[GATE]
    if request.get(SESSION) is not None:
        return _redirect(gate.safe_next(request.query.get("next", "")))
    return _login_response(request, 200)


async def login_submit(request: web.Request) -> web.Response:
    auth, gate = request.config_dict[OPERATOR_AUTH], request.config_dict[GATE]
    form = await request.post()
    username = str(form.get("username", "")).strip()
    password = str(form.get("password", ""))
    next_path = str(form.get("next", ""))
    texts = pages.TEXTS[pages.language(request)]
    if not username or not password:
        return _login_response(request, 422, error=texts["missing"], username=username, next_path=next_path)
    address = client_address(request, auth.trust_forwarded_for)
    outcome = await log_in(auth, username, password, address, request.headers.get("User-Agent"))
    if outcome.session is None:
        if outcome.locked_until is not None:
            seconds = max(1, math.ceil((outcome.locked_until - auth.now()).total_seconds()))
            error = texts["locked"].format(minutes=math.ceil(seconds / 60))
            response = _login_response(request, 429, error=error, username=username, next_path=next_path)
            response.headers["Retry-After"] = str(seconds)
            return response
        return _login_response(request, 401, error=texts["wrong"], username=username, next_path=next_path)
    response = _redirect(gate.safe_next(next_path))
    response.set_cookie(
        SESSION_COOKIE,
        outcome.token,
        path=gate.base,
        max_age=int(auth.sessions.lifetime.total_seconds()),
        httponly=True,
        samesite="Strict",
        secure=_secure(request, auth),
    )
    return response


async def logout(request: web.Request) -> web.Response:
    auth, gate = request.config_dict[OPERATOR_AUTH], request.config_dict[GATE]
    await log_out(auth, request[SESSION], client_address(request, auth.trust_forwarded_for))
    response = _redirect(f"{gate.login_path}?bye=1")
    response.del_cookie(SESSION_COOKIE, path=gate.base)
    return response


def operations(mount: str) -> tuple[Operation, ...]:
    """The login page (GET shows it, POST signs in) and logout (POST) of an operators' app at ``mount``."""
    html = "text/html"
    return (
        Operation(
            "GET",
            f"{mount}/login",
            login_form,
            "loginPage",
            "The operators' login form (Spanish; ?lang=en for English)",
            {"200": content(html, "HTML page"), "303": no_body("already signed in: to the page asked for")},
            security=PUBLIC,
            name=LOGIN,
        ),
        Operation(
            "POST",
            f"{mount}/login",
            login_submit,
            "login",
            "Sign in with the form fields username, password and csrf_token; sets the session cookie",
            {
                "303": no_body("signed in: to the page asked for"),
                "401": content(html, "wrong name or password (the form again)"),
                "403": problem("Missing or wrong CSRF token"),
                "422": content(html, "a field is empty"),
                "429": content(html, "locked after repeated failures; Retry-After says until when"),
            },
            security=PUBLIC,
            name=LOGIN,
        ),
        Operation(
            "POST",
            f"{mount}/logout",
            logout,
            "logout",
            f"End the session ({CSRF_HEADER} header or {CSRF_FIELD} form field)",
            {"303": no_body("to the login page"), "403": problem("Missing or wrong CSRF token")},
            security=OPERATOR,
            name=LOGOUT,
        ),
    )
