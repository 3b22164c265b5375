"""[dashboard] settings: the lockout and session knobs, and a clear word for the old shared password."""

from __future__ import annotations

import pytest

from config.settings import DEFAULT_CONFIG, DEMO_CONFIG, ConfigError, load_settings

ENV = {"SMSGW_DEMO_SMSC_PASSWORD": "smsgw", "SMSGW_DEMO_SECRET": "demo-secret"}


def test_the_shipped_configurations_load_with_the_defaults():
    for path, env in ((DEMO_CONFIG, ENV), (DEFAULT_CONFIG, None)):
        if env is None:
            env = {"SMSGW_TELCEL_PASSWORD": "t", "SMSGW_MOVISTAR_PASSWORD": "m", "SMSGW_CESAC_SECRET": "s"}
        dashboard = load_settings(path, env=env).dashboard
        assert (dashboard.max_failures, dashboard.failure_window_minutes, dashboard.lockout_minutes) == (
            5,
            15,
            15,
        )
        assert dashboard.max_failures_per_address == 20 and not dashboard.secure_cookies


def test_the_old_shared_password_is_refused_with_what_to_do_instead(tmp_path):
    path = tmp_path / "smsgw.toml"
    path.write_text('[dashboard]\nuser = "operator"\npassword_env = "SMSGW_DASHBOARD_PASSWORD"\n')
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    message = str(exc.value)
    assert message.startswith("config error: dashboard: ")
    assert "smsgw operators add NAME" in message


def test_bad_values_name_the_key(tmp_path):
    path = tmp_path / "smsgw.toml"
    path.write_text("[dashboard]\nmax_failures = 0\n")
    with pytest.raises(ConfigError, match=r"dashboard\.max_failures"):
        load_settings(path, env={})
    env = {"SMSGW_DASHBOARD_SECURE_COOKIES": "true"}
    path.write_text("[dashboard]\n")
    assert load_settings(path, env=env).dashboard.secure_cookies
