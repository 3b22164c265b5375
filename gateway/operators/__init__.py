"""Operators: people with accounts and roles, who sign in to the dashboard.

``accounts`` (the operators table), ``passwords`` (argon2id), ``sessions`` (server-side, hashed
tokens), ``lockout`` (failed logins per name and per address), ``audit`` (the audit log and the
``audit(request, …)`` helper), ``login`` (signing in and out), ``web`` (session and CSRF
middlewares, login and logout handlers, ``requires(role)``), ``pages`` (the login page, Spanish
first), ``commands`` (``smsgw operators``). Everything they keep is in the database, so every
gateway process sees the same accounts, sessions, locks and log.
"""
