"""The operators' HTTP layer: sessions and CSRF (``web``), the login page, Spanish first
(``pages``, ``templates/``), and what their handlers share (``context``: the session, ``audit``).

The accounts, sessions, failed logins and audit log are rows (gateway/store/operators.py,
operator_sessions.py, login_throttle.py, audit.py), so every gateway process sees the same;
signing in is gateway/services/operator_auth.py; roles are gateway/domain/operators.py.
"""
