"""Operators: people with accounts, sessions, roles, CSRF protection and an audit log."""
