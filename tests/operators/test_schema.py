"""Migration 0008 creates exactly the operators' tables that gateway/store/models.py describes."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from gateway.store.models import metadata

TABLES = {"operators", "operator_sessions", "login_throttle", "audit_log"}


def test_the_migration_matches_the_models(db):
    def only_ours(obj, name, type_, reflected, compare_to):
        table = obj if type_ == "table" else getattr(obj, "table", None)
        return table is not None and table.name in TABLES

    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": only_ours, "compare_type": True, "compare_server_default": False}
        )
        assert compare_metadata(context, metadata) == []
