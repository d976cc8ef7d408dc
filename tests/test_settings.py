"""The one settings model: validation, layers, profiles, durations, and that every front end
(explore(), @explored, @pytest.mark.explore, the command line) builds the same settings
from the same inputs and starts from the same defaults."""

from __future__ import annotations

import asyncio
import inspect
import math
import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

import explorer
from explorer import _engine, _settings, cli
from explorer._explored import explored
from explorer._settings import (
    NAMES,
    Settings,
    SettingsError,
    coerce_text,
    format_duration,
    from_keywords,
    get_profile,
    parse_duration,
    profile_names,
    register_profile,
)
from explorer.strategies import RandomWalk, names
from tests.conftest import cli_project, run_cli

pytest_plugins = ["pytester"]


async def two_steps() -> None:
    async def step() -> None:
        await asyncio.sleep(0)

    await asyncio.gather(step(), step())


@pytest.fixture
def profiles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Profiles registered by a test are forgotten after it."""
    monkeypatch.setattr(_settings, "_PROFILES",
                        {k: dict(v) for k, v in _settings._PROFILES.items()})


class Stop(Exception):
    """Raised by the spy once it has seen the settings an exploration would use."""


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """Every Settings explore() builds, in order; the exploration stops right there."""
    recorded: list[Settings] = []

    def spy(*args: Any, **kwargs: Any) -> Settings:
        recorded.append(from_keywords(*args, **kwargs))
        raise Stop

    monkeypatch.setattr(_engine, "from_keywords", spy)
    return recorded


def _by_name(settings: Settings) -> Settings:
    """The settings with the strategy as its name (the command line wraps the strategy it
    builds, to report progress)."""
    return settings.replace(strategy=settings.strategy_name)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(("values", "words"), [
    ({"strategy": "sideways"}, "unknown strategy 'sideways'; use one of: coarse, coverage, dpor"),
    ({"strategy": 3}, "unknown strategy 3"),
    ({"runtime": "curio"}, "unknown runtime 'curio'; available runtimes: asyncio, trio"),
    ({"max_schedules": 0}, "max_schedules must be a positive integer, got 0; for example "
                           "max_schedules=100"),
    ({"max_schedules": True}, "max_schedules must be a positive integer, got True"),
    ({"max_steps": 2.5}, "max_steps must be a positive integer, got 2.5"),
    ({"deviation_bound": -1}, "deviation_bound must be 0 or a positive integer, got -1"),
    ({"seed": "7"}, "seed must be an integer, got '7'"),
    ({"timer_races": 1}, "timer_races must be True or False, got 1"),
    ({"max_time": -3}, "max_time must be 0 or more seconds, got -3"),
    ({"max_time": "soon"}, "max_time: 'soon' is not a duration; write for example 90s"),
    ({"max_time": "400d"}, "less than a year"),
    ({"run_timeout": -1}, "run_timeout must be a number of seconds (0 or None disables "
                          "it), got -1; for example run_timeout=10"),
    ({"run_timeout": math.nan}, "run_timeout must be a number of seconds"),
    ({"max_schedule": 5}, "unknown explorer setting(s) max_schedule; the settings are "
                          "strategy, max_schedules, seed, deviation_bound, max_steps, "
                          "timer_races, shrink, max_time, runtime, run_timeout, faults, "
                          "preemption_bound (and profile)"),
    ({"profile": "weekly"}, "unknown explorer profile 'weekly'; the profiles are default, "
                            "quick, ci, nightly (add one with explorer.register_profile)"),
])
def test_a_bad_setting_names_itself_the_value_and_the_fix(values: dict[str, object],
                                                          words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.merged(values)
    assert words in str(caught.value)
    assert isinstance(caught.value, explorer.UsageError)


def test_an_error_names_where_the_setting_was_written() -> None:
    with pytest.raises(SettingsError) as caught:
        Settings.merged({"max_schedules": 0}, where="@explored on tests.test_x")
    assert str(caught.value).startswith("@explored on tests.test_x: max_schedules must be")
    assert caught.value.at("--max-schedules") == "--max-schedules = 0 must be a positive " \
        "integer"
    with pytest.raises(SettingsError) as caught:
        Settings.merged({"max_time": "soon"})
    assert caught.value.at("--max-time").startswith("--max-time: 'soon' is not a duration")


def test_settings_are_frozen_and_replace_checks_again() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.seed = 3  # type: ignore[misc]
    assert settings.replace(seed=3).seed == 3
    with pytest.raises(SettingsError, match="max_steps must be a positive integer"):
        settings.replace(max_steps=0)


def test_a_strategy_instance_is_a_setting_but_not_sent_to_workers() -> None:
    strategy = RandomWalk(seed=1)
    settings = Settings(strategy=strategy)
    assert settings.strategy is strategy and settings.strategy_name == strategy.name
    with pytest.raises(explorer.UsageError, match="only a strategy name can be sent"):
        settings.to_json()


def test_json_round_trip_is_what_workers_receive() -> None:
    settings = Settings.merged({"strategy": "systematic", "max_schedules": 50, "seed": 4,
                                "deviation_bound": 2, "max_time": "2m",
                                "run_timeout": "30s", "runtime": "trio"})
    data = settings.to_json()
    assert list(data) == list(NAMES)
    assert data["max_time"] == 120.0 and data["run_timeout"] == 30.0
    assert Settings.from_json(data) == settings
    with pytest.raises(SettingsError, match="unknown explorer setting"):
        Settings.from_json({**data, "colour": "red"})


def test_text_is_coerced_by_the_setting_it_is_for() -> None:
    assert coerce_text("max_schedules", " 12 ") == 12
    assert coerce_text("shrink", "no") is False
    assert coerce_text("run_timeout", "30s") == "30s"  # the Settings parse durations
    with pytest.raises(SettingsError) as caught:
        coerce_text("seed", "abc")
    assert caught.value.at("explore_seed in the ini file") == \
        "explore_seed in the ini file = 'abc' must be an integer"


# --------------------------------------------------------------------------- layers


def test_later_layers_win_and_none_means_not_set() -> None:
    settings = Settings.merged({"max_schedules": 5, "seed": 1}, {"max_schedules": 9},
                               {"seed": None}, None)
    assert (settings.max_schedules, settings.seed) == (9, 1)


def test_a_settings_layer_counts_whole() -> None:
    base = Settings(run_timeout=None, max_schedules=None)  # both "off", not "not set"
    settings = Settings.merged({"run_timeout": 9, "max_schedules": 3}, base)
    assert settings.run_timeout is None and settings.max_schedules is None


def test_a_profile_sits_just_below_the_values_of_its_layer() -> None:
    settings = Settings.merged({"max_schedules": 5}, {"profile": "ci", "seed": 9})
    assert (settings.max_schedules, settings.seed) == (2_000, 9)


def test_run_timeout_zero_or_infinite_disables_the_limit() -> None:
    assert Settings(run_timeout=0).run_timeout is None
    assert Settings(run_timeout="0").run_timeout is None
    assert Settings(run_timeout=math.inf).run_timeout is None
    assert Settings(run_timeout=3).run_timeout == 3.0


# --------------------------------------------------------------------------- profiles


def test_builtin_profiles() -> None:
    assert profile_names()[:4] == ["default", "quick", "ci", "nightly"]
    assert get_profile("default") == Settings()
    assert get_profile("quick").max_schedules == 200
    ci = get_profile("ci")
    assert (ci.max_schedules, ci.seed) == (2_000, 0)  # bounded, and the same every run
    assert get_profile("nightly").max_schedules == 20_000


@pytest.mark.usefixtures("profiles")
def test_registered_profiles_build_on_a_parent() -> None:
    thorough = register_profile("thorough", parent="ci", max_schedules=50_000)
    assert (thorough.max_schedules, thorough.seed) == (50_000, 0)
    assert "thorough" in profile_names()
    assert Settings.merged({"profile": "thorough"}) == thorough
    with pytest.raises(SettingsError, match="profile 'broken': max_steps must be a positive"):
        register_profile("broken", max_steps=0)
    assert "broken" not in profile_names()
    with pytest.raises(explorer.UsageError, match="non-empty string"):
        register_profile("", max_schedules=3)


@pytest.mark.usefixtures("profiles")
def test_redefining_default_changes_every_default(seen: list[Settings]) -> None:
    register_profile("default", max_schedules=42)
    with pytest.raises(Stop):
        explorer.explore(two_steps)
    assert seen[-1].max_schedules == 42
    assert Settings.merged().max_schedules == 42


def test_the_public_names() -> None:
    assert explorer.Settings is Settings
    assert explorer.register_profile is register_profile
    assert explorer.get_profile is get_profile


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("90s", 90.0), ("5m", 300.0), ("1h30m", 5400.0), ("250ms", 0.25),
    (" 2H ", 7200.0), ("1d", 86400.0),
])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert Settings(max_time=text).max_time == seconds


@pytest.mark.parametrize("text", ["", "soon", "5 minutes", "-5s", "0s", "400d", "1h30"
                                  "x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(explorer.UsageError, match="duration"):
        parse_duration(text)


def test_format_duration() -> None:
    assert [format_duration(s) for s in (1.25, 90, 7260)] == ["1.2s", "1m30s", "2h01m"]


# --------------------------------------------------------------------------- explore(), run()


def test_explore_keywords_over_a_profile_over_settings(seen: list[Settings]) -> None:
    with pytest.raises(Stop):
        explorer.explore(two_steps, profile="quick")
    assert seen[-1] == get_profile("quick")
    with pytest.raises(Stop):
        explorer.explore(two_steps, profile="quick", max_schedules=5, max_time="1m")
    assert (seen[-1].max_schedules, seen[-1].max_time) == (5, 60.0)
    base = Settings(strategy="systematic", deviation_bound=1)
    with pytest.raises(Stop):
        explorer.explore(two_steps, settings=base, seed=8)
    assert seen[-1] == base.replace(seed=8)
    with pytest.raises(Stop):
        explorer.explore(two_steps, run_timeout=None)  # given explicitly: no limit
    assert seen[-1].run_timeout is None


def test_run_and_replay_check_their_settings_the_same_way() -> None:
    with pytest.raises(SettingsError, match="max_steps must be a positive integer, got 0"):
        explorer.run(two_steps, max_steps=0)
    with pytest.raises(SettingsError, match="unknown runtime 'curio'"):
        explorer.replay(two_steps, "v1:", runtime="curio")
    assert explorer.run(two_steps, run_timeout="10s").passed


# --------------------------------------------------------------------------- front ends agree


GIVEN = {"strategy": "random", "max_schedules": 7, "seed": 3, "max_steps": 500,
         "timer_races": True, "run_timeout": 2}

MODULE = textwrap.dedent('''
    import asyncio

    import pytest


    async def _step():
        await asyncio.sleep(0)


    @pytest.mark.explore({marker})
    async def test_target():
        await asyncio.gather(_step(), _step())
''')


def _cli_args(values: dict[str, object]) -> list[str]:
    flags = {"strategy": "--strategy", "max_schedules": "--max-schedules", "seed": "--seed",
             "max_steps": "--max-steps", "run_timeout": "--run-timeout"}
    args = [part for k, v in values.items() if k in flags for part in (flags[k], str(v))]
    return args + (["--timer-races"] if values.get("timer_races") else [])


def _marker(values: dict[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


@pytest.mark.parametrize("values", [GIVEN, {}], ids=["given", "defaults"])
def test_every_front_end_builds_the_same_settings(
        values: dict[str, object], seen: list[Settings], pytester: pytest.Pytester,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(Stop):
        explorer.explore(two_steps, **values)  # type: ignore[arg-type]
    by_api = seen[-1]

    @explored(**values)
    async def test_decorated() -> None:
        await two_steps()

    with pytest.raises(Stop):
        test_decorated()
    assert len(seen) == 2 and seen[-1] == by_api

    pytester.makepyfile(test_marked=MODULE.format(marker=_marker(values)))
    pytester.runpytest_inprocess("-p", "no:cacheprovider", "-p", "no:asyncio", "-p",
                                 "no:hypothesispytest", "--explore-no-save"
                                 ).assert_outcomes(failed=1)  # stopped by the spy
    assert len(seen) == 3 and seen[-1] == by_api

    project = tmp_path / "project"
    project.mkdir()
    _, name = cli_project(project, monkeypatch, request, "settings_",
                          MODULE.format(marker=""))
    run_cli(capsys, "explore", f"{name}:test_target", "--no-save", *_cli_args(values))
    assert len(seen) == 4
    by_cli = _by_name(seen[-1])
    if "seed" not in values:  # the command line fixes a seeded strategy's seed up front
        assert by_cli.seed is not None
        by_cli = by_cli.replace(seed=None)
    assert by_cli == by_api
    if not values:
        assert by_api == Settings()


def test_the_command_line_takes_a_profile_from_the_option_or_the_project(
        seen: list[Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    root, name = cli_project(tmp_path, monkeypatch, request, "settings_",
                             MODULE.format(marker="max_steps=300"))
    run_cli(capsys, "explore", f"{name}:test_target", "--no-save", "--profile", "quick")
    assert len(seen) == 1
    assert (seen[-1].max_schedules, seen[-1].max_steps) == (200, 300)  # the marker wins
    (root / "pyproject.toml").write_text("[project]\nname = 'demo'\n\n[tool.explorer]\n"
                                         'profile = "ci"\n')
    run_cli(capsys, "explore", f"{name}:test_target", "--no-save", "-n", "9")
    assert len(seen) == 2 and (seen[-1].max_schedules, seen[-1].seed) == (9, 0)
    code, _, err = run_cli(capsys, "explore", f"{name}:test_target", "--profile", "weekly")
    assert code == cli.USAGE
    assert "--profile: unknown explorer profile 'weekly'" in err


def test_explore_and_the_command_line_share_the_default_strategy() -> None:
    default = inspect.signature(explorer.explore).parameters["strategy"].default
    assert default == Settings().strategy == "portfolio"


def test_explore_help_lists_every_strategy(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "explore", "--help")
    assert code == cli.OK
    text = re.sub(r"[\s│]+", " ", out)  # the help is wrapped in a box
    for name in names():
        assert re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text), name
    assert "else portfolio" in text
