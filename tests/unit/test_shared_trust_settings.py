"""The shared cache's trust settings (packager/shared.py `cache_trust`): a stage's value wins over
[tool.pkg]'s, PKG_CACHE_PUSH over both, and settings that can't work are a ConfigError up front."""

from __future__ import annotations

import pytest

from packager.config import load_config
from packager.errors import ConfigError
from packager.shared import CACHE_PUSH_ENV, SharedCacheTrust, cache_trust


def config(tmp_path, root: str = "", stage: str = ""):
    (tmp_path / "pyproject.toml").write_text(
        f'[tool.pkg]\nproject = "datamart"\n{root}\n[tool.pkg.stages.dev]\nregion = "us-east-1"\n{stage}'
    )
    return load_config(str(tmp_path))


def test_the_default_is_every_checked_row_and_pushing(tmp_path):
    assert cache_trust(config(tmp_path)) == SharedCacheTrust("any", None, None, True)


def test_a_stage_overrides_the_root_and_the_environment_overrides_cache_push(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_PUSH_ENV, raising=False)
    settings = config(
        tmp_path,
        root='cache_signing_key = "alias/pkg-cache"\ncache_trust = "signed"\ncache_push = false',
        stage='cache_signing_key = "alias/prod-cache"',
    )
    assert cache_trust(settings) == SharedCacheTrust("signed", "alias/pkg-cache", None, False)
    assert cache_trust(settings, "dev").signing_key == "alias/prod-cache"
    monkeypatch.setenv(CACHE_PUSH_ENV, "1")
    assert cache_trust(settings).push
    monkeypatch.setenv(CACHE_PUSH_ENV, "maybe")
    with pytest.raises(ConfigError, match=CACHE_PUSH_ENV):
        cache_trust(settings)


@pytest.mark.parametrize(
    ("root", "message"),
    [
        ('cache_trust = "paranoid"', "cache_trust must be one of any, signed"),
        ('cache_trust = "signed"', "needs the key to trust"),
    ],
)
def test_settings_that_cannot_work_are_a_config_error(tmp_path, root, message):
    with pytest.raises(ConfigError, match=message):
        cache_trust(config(tmp_path, root))
