"""The operators' pages' language (Spanish first, English available) and the login page."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

LANGUAGES = ("es", "en")
LANG_COOKIE = "smsgw_lang"

TEXTS = {
    "es": {
        "sign_in": "Iniciar sesión",
        "heading": "smsgw · centro de control",
        "intro": "Acceso para el personal de atención ciudadana.",
        "username": "Usuario",
        "password": "Contraseña",
        "wrong": "Usuario o contraseña incorrectos.",
        "locked": "Demasiados intentos fallidos. Intente de nuevo en {minutes} min.",
        "missing": "Escriba su usuario y su contraseña.",
        "logged_out": "Sesión cerrada.",
        "expired": "Su sesión terminó. Inicie sesión de nuevo.",
        "log_out": "Cerrar sesión",
        "other_language": "English",
        "roles": {"viewer": "consulta", "operator": "operador", "admin": "administrador"},
    },
    "en": {
        "sign_in": "Sign in",
        "heading": "smsgw · control room",
        "intro": "For the city's citizen-attention staff.",
        "username": "Username",
        "password": "Password",
        "wrong": "Wrong username or password.",
        "locked": "Too many failed attempts. Try again in {minutes} min.",
        "missing": "Type your username and your password.",
        "logged_out": "You are signed out.",
        "expired": "Your session ended. Sign in again.",
        "log_out": "Sign out",
        "other_language": "Español",
        "roles": {"viewer": "viewer", "operator": "operator", "admin": "admin"},
    },
}

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True),
)


def language(request: web.Request) -> str:
    """``?lang=`` when given, else the one chosen before (cookie), else Spanish."""
    for candidate in (request.query.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LANGUAGES:
            return candidate
    return LANGUAGES[0]


def remember_language(request: web.Request, response: web.StreamResponse, cookie_path: str) -> None:
    chosen = request.query.get("lang")
    if chosen in LANGUAGES and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, chosen, max_age=365 * 86400, path=cookie_path, samesite="Lax")


def login_page(
    lang: str,
    csrf_token: str,
    *,
    error: str | None = None,
    notice: str | None = None,
    username: str = "",
    next_path: str = "",
) -> str:
    return _templates.get_template("login.html").render(
        lang=lang,
        other="en" if lang == "es" else "es",
        t=TEXTS[lang],
        csrf_token=csrf_token,
        error=error,
        notice=notice,
        username=username,
        next_path=next_path,
    )
