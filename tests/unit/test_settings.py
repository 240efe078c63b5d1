from __future__ import annotations

from pathlib import Path

import pytest

from entrypoints.settings import Settings


class TestSettingsFromEnvironment:
    def test_every_kind_of_value_is_read_from_text(self) -> None:
        settings = Settings.from_env(
            {
                "CHORUS_DATA_DIR": "/tmp/chorus-data",
                "CHORUS_PORT": "8765",
                "CHORUS_PROJECTIONS": "false",
                "CHORUS_DISPATCH_LEASE_SECONDS": "12.5",
                "CHORUS_RENDER_OPERATIONS": "5000",
                "CHORUS_RENDER_SECONDS": "0.5",
            }
        )
        assert settings.data_dir == Path("/tmp/chorus-data")
        assert settings.port == 8765
        assert settings.projections is False
        assert settings.dispatch_lease_seconds == 12.5
        assert (settings.render_operations, settings.render_seconds) == (5000, 0.5)

    def test_a_bad_value_names_its_variable(self) -> None:
        with pytest.raises(SystemExit, match="CHORUS_PORT"):
            Settings.from_env({"CHORUS_PORT": "eighty"})

    def test_the_parking_settings_are_read_and_checked(self) -> None:
        settings = Settings.from_env(
            {"CHORUS_PROJECTION_ATTEMPTS": "5", "CHORUS_READY_PARKED_AGE": "60"}
        )
        assert (settings.projection_attempts, settings.ready_parked_age) == (5, 60.0)
        assert Settings.from_env({}).ready_parked_age == 900.0
        with pytest.raises(SystemExit, match="CHORUS_PROJECTION_ATTEMPTS"):
            Settings.from_env({"CHORUS_PROJECTION_ATTEMPTS": "0"})

    def test_a_render_budget_of_nothing_is_refused(self) -> None:
        with pytest.raises(SystemExit, match="CHORUS_RENDER_SECONDS"):
            Settings.from_env({"CHORUS_RENDER_SECONDS": "0"})
