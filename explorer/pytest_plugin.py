"""The pytest plugin: ``@pytest.mark.explore`` makes an ``async def`` test an explored test.

Registered through the ``pytest11`` entry point, so every pytest run in an environment with
the explorer installed imports this module. It therefore imports nothing but pytest and the
standard library at module level; the engine is imported inside the hooks, and only in
sessions that collect an explored test.

An explored test is run by :func:`explorer.explore`, once per schedule. The user's own
function-scoped fixtures are set up and torn down for every schedule, inside the run
(:mod:`explorer._pytest_fixtures`); pytest's and plugins' fixtures, and wider-scoped ones,
keep one value per test item (a :class:`SharedFixtureWarning` names the user's own).
Its saved corpus entries become test items of their own, named ``test_x[corpus v1:...]``
and run just before it; a failure they report is not printed again by the exploration.
Under pytest-xdist, workers send their corpus summary to the controller, which prints it
once. Settings, lowest precedence first: the ``default`` profile, the profile
chosen with ``--explore-profile`` or ``explore_profile``, the ini file,
``@pytest.mark.explore(...)`` (the closest marker wins; its ``profile=`` sits just below its
own settings), the command line. :class:`explorer._settings.Settings` checks them all.
The runtime is the marker's ``runtime`` setting; without one, a test that pytest-trio's
``trio`` mark reaches (on the test, its class or its module) runs under ``"trio"``, any
other under ``"asyncio"``.

The ``linearizability`` fixture gives a plain ``def`` test a linearizability check with
the same settings and corpus (:mod:`explorer._linearize._pytest`); such a test may carry
``@pytest.mark.explore`` (its settings, and the nightly job collects it), no other plain
test may.

Async test plugins (pytest-asyncio, pytest-trio, anyio) decide at collection time which
tests are theirs by looking for coroutine functions. The plugin takes an explored test over
as soon as it is collected: the item becomes a plain :class:`pytest.Function` whose
function is a synchronous stand-in and their runner markers are removed, so no other
plugin runs it on a real event loop. A ``trio`` mark on a class or module cannot be removed
for one test; the stand-in carries pytest-trio's "already wrapped" flag instead, so
pytest-trio leaves it as it is. Without pytest-trio, the plugin registers the ``trio``
marker itself, so that ``--strict-markers`` accepts explored trio tests.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable

    from explorer._corpus import CorpusEntry, CorpusError
    from explorer._explored import BoundTest
    from explorer._failure import ScheduleFailure
    from explorer._linearize._pytest import LinearizabilityCheck
    from explorer._pytest_fixtures import FixturePlan
    from explorer._settings import Settings

#: The settings the ini file and the command line set, as ``explore_<name>`` and
#: ``--explore-<name>`` (the others are set per test, in the marker, or by a profile).
SESSION_SETTINGS: Final = ("max_schedules", "seed", "strategy", "run_timeout", "max_time")

#: Marks by which async-test plugins claim a test; an explored test must not carry them.
FOREIGN_RUNNER_MARKS: Final = frozenset({"asyncio", "trio"})
#: pytest-trio's mark: with ``@pytest.mark.explore`` it makes ``runtime="trio"`` the default.
TRIO_MARK: Final = "trio"
#: pytest-trio runs a test marked ``trio`` through a wrapper it builds, unless the test
#: function carries this attribute (the wrapper itself does, so it is never wrapped twice).
TRIO_WRAPPED_ATTR: Final = "_trio_test_runner_wrapped"

_ORIGINAL = pytest.StashKey["Callable[..., Any]"]()  # the async test function
_PARAMS = pytest.StashKey[str]()  # "[id]" of a parametrized test, else ""
_TRIO = pytest.StashKey[bool]()  # a trio mark reached the test when it was taken over
_ENTRY = pytest.StashKey["CorpusEntry"]()
_OPTIONS = pytest.StashKey["_Options"]()
_LEDGER = pytest.StashKey["_Ledger"]()
_FIXTURES = pytest.StashKey["FixturePlan"]()
_SIBLINGS = pytest.StashKey["dict[tuple[object, ...], str]"]()  # entry signature -> node id
#: The fixture of a plain test that runs a linearizability check with the plugin's settings.
LINEARIZABILITY_FIXTURE: Final = "linearizability"


class SharedFixtureWarning(pytest.PytestWarning):
    """An explored test uses a fixture of the user's that is wider than function-scoped:
    one value is shared by every schedule, so state it keeps carries from one schedule to
    the next."""


@dataclasses.dataclass(frozen=True)
class _Options:
    """Session-wide settings layers: the profile, the ini file and the command line."""

    profile: str
    ini: dict[str, object]
    cli: dict[str, object]
    corpus: Path
    save: bool
    replay_only: bool
    replay: str | None = None
    statistics: bool = False
    html: Path | None = None


@dataclasses.dataclass
class _Ledger:
    """What the terminal summary reports about the corpus."""

    fixed: list[str] = dataclasses.field(default_factory=list)
    diverged: list[str] = dataclasses.field(default_factory=list)
    saved: list[str] = dataclasses.field(default_factory=list)
    #: ``--explore-show-statistics``: one block of lines per explored test.
    statistics: list[str] = dataclasses.field(default_factory=list)
    #: ``--explore-html``: each failure's report as JSON, with the node id that shows it.
    failures: list[dict[str, object]] = dataclasses.field(default_factory=list)
    #: Failures a corpus item of this session reported, by scenario: (signature, node id).
    #: Exploring the test finds them again; they are then not printed a second time.
    reported: dict[str, dict[tuple[object, ...], str]] = dataclasses.field(
        default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """What a pytest-xdist worker sends the controller (``reported`` stays with it)."""
        return {"fixed": self.fixed, "diverged": self.diverged, "saved": self.saved,
                "statistics": self.statistics, "failures": self.failures}

    def merge(self, data: object) -> None:
        """Add what a worker sent (:meth:`to_json`), ignoring anything else."""
        if not isinstance(data, dict):
            return
        for name in ("fixed", "diverged", "saved", "statistics", "failures"):
            value = data.get(name)
            if isinstance(value, list):
                getattr(self, name).extend(value)


# -- options ----------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    # The settings model is light (the standard library and the explorer's exceptions);
    # the engine is not imported here.
    from explorer._settings import profile_names

    group = parser.getgroup("explorer", "schedule explorer (tests marked explore)")
    group.addoption("--explore-max-schedules", type=int, metavar="N",
                    help="explore at most N schedules per explored test")
    group.addoption("--explore-seed", type=int, metavar="SEED",
                    help="seed of the random strategy (default: a fresh one, reported)")
    group.addoption("--explore-strategy", metavar="NAME",
                    help="search strategy for every explored test (default: portfolio; "
                         "see explorer.strategies.names())")
    group.addoption("--explore-corpus", metavar="DIR",
                    help="corpus directory, relative to the rootdir (default: corpus)")
    group.addoption("--explore-replay-only", action="store_true", default=False,
                    help="run the saved corpus entries of explored tests, explore nothing")
    group.addoption("--explore-save", dest="explore_save", action="store_true",
                    default=None, help="save new shrunk failures to the corpus (default)")
    group.addoption("--explore-no-save", dest="explore_save", action="store_false",
                    help="do not write new failures to the corpus")
    group.addoption("--explore-run-timeout", metavar="SECONDS",
                    help="stop a run after this much real time (seconds, or 30s, 2m) and "
                         "report it as a hang (default 5; 0 disables)")
    group.addoption("--explore-profile", metavar="NAME",
                    help=f"settings profile: {', '.join(profile_names())}, or one registered "
                         "with explorer.register_profile (default: default)")
    group.addoption("--explore-max-time", metavar="SECONDS",
                    help="stop exploring each explored test after this much real time "
                         "(seconds, or 90s, 5m); what ran until then is reported")
    group.addoption("--explore-replay", metavar="SCHEDULE",
                    help="run only this schedule ('v1:...') of each selected explored test, "
                         "fixtures included, and fail with its story if it fails; select "
                         "the test by its node id: pytest tests/test_x.py::test_y "
                         "--explore-replay 'v1:...'")
    group.addoption("--explore-show-statistics", action="store_true", default=False,
                    help="print, per explored test, the schedules run, the distinct "
                         "interleavings, each strategy's share and the time taken")
    group.addoption("--explore-html", metavar="PATH",
                    help="write an HTML report of the explored tests' failures to PATH")
    parser.addini("explore_max_time", "seconds of real time to explore each explored test",
                  default="")
    parser.addini("explore_profiles", "settings profiles of this project, one a line: "
                  "name: setting=value ... (parent=NAME builds on another profile)",
                  type="linelist", default=[])
    parser.addini("explore_max_schedules", "explore at most N schedules per explored test",
                  default="")
    parser.addini("explore_seed", "seed of the random strategy", default="")
    parser.addini("explore_strategy", "search strategy for explored tests", default="")
    parser.addini("explore_corpus", "corpus directory, relative to the rootdir",
                  default="corpus")
    parser.addini("explore_save", "save new shrunk failures to the corpus", type="bool",
                  default=True)
    parser.addini("explore_profile", "settings profile for explored tests", default="")
    parser.addini("explore_run_timeout", "seconds of real time a run may take before it "
                  "is reported as a hang (0 disables)", default="")


@pytest.hookimpl(trylast=True)  # after other plugins registered their markers
def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "explore(**settings): run this async test once per schedule with the schedule "
        "explorer; settings: strategy, max_schedules, seed, deviation_bound, max_steps, "
        "timer_races, faults, shrink, max_time, run_timeout, runtime ('asyncio' or 'trio'; default "
        "'trio' for a test marked trio), profile")
    if not _registered(config, TRIO_MARK):
        # pytest-trio is not installed (or is disabled): without this, --strict-markers
        # (or filterwarnings = error) rejects @pytest.mark.trio on an explored trio test.
        config.addinivalue_line(
            "markers",
            "trio: a trio test (registered by the explorer because no plugin did: only tests "
            "also marked explore run, under the explorer's trio runtime; install pytest-trio "
            "for the others)")
    config.stash[_OPTIONS] = _read_options(config)
    config.stash[_LEDGER] = _Ledger()


def _registered(config: pytest.Config, name: str) -> bool:
    """Whether a plugin or the ini file registered the marker ``name``."""
    return any(str(line).split(":", 1)[0].split("(", 1)[0].strip() == name
               for line in config.getini("markers"))


def _register_profiles(config: pytest.Config) -> None:
    """Register the project's own profiles: ``[tool.explorer.profiles.NAME]`` tables of
    the rootdir's ``pyproject.toml``, then ``explore_profiles`` lines of the ini file."""
    import tomllib

    from explorer._settings import SettingsError, coerce_text, register_profiles

    pyproject = config.rootpath / "pyproject.toml"
    try:
        if pyproject.is_file():
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
            tool = data.get("tool", {})
            section = tool.get("explorer", {}) if isinstance(tool, dict) else {}
            table = section.get("profiles", {}) if isinstance(section, dict) else {}
            if not isinstance(table, dict):
                raise pytest.UsageError(f"{pyproject}: [tool.explorer] profiles must be a "
                                        "table of profiles: [tool.explorer.profiles.NAME]")
            register_profiles(table, where=f"{pyproject} [tool.explorer.profiles]")
        lines: dict[str, object] = {}
        for line in config.getini("explore_profiles"):
            name, colon, rest = str(line).partition(":")
            pairs = [word.partition("=") for word in rest.split()]
            if not colon or not name.strip() or any(not eq for _, eq, _ in pairs):
                raise pytest.UsageError(
                    f"explore_profiles in the ini file: {line!r} is not 'name: setting=value "
                    "...'; write for example 'thorough: parent=ci max_schedules=5000'")
            lines[name.strip()] = {key: value if key == "parent" else coerce_text(key, value)
                                   for key, _, value in pairs}
        register_profiles(lines, where="explore_profiles in the ini file")
    except (tomllib.TOMLDecodeError, OSError, SettingsError) as err:
        raise pytest.UsageError(str(err)) from None


def _read_options(config: pytest.Config) -> _Options:
    _register_profiles(config)
    profile = (config.getoption("explore_profile")
               or str(config.getini("explore_profile")).strip() or "default")
    _check({"profile": profile}, "profile", "--explore-profile")
    ini: dict[str, object] = {}
    cli: dict[str, object] = {}
    for name in SESSION_SETTINGS:
        raw = str(config.getini(f"explore_{name}")).strip()
        if raw:
            source = f"explore_{name} in the ini file"
            ini[name] = _check(None, name, source, raw)
        value = config.getoption(f"explore_{name}")
        if value is not None:
            cli[name] = _check(None, name, f"--explore-{name.replace('_', '-')}", str(value))
    corpus = Path(config.getoption("explore_corpus") or str(config.getini("explore_corpus")))
    save = config.getoption("explore_save")
    replay = config.getoption("explore_replay")
    if replay is not None:
        from explorer._schedule import Schedule

        try:
            replay = str(Schedule.parse(replay))
        except ValueError as err:
            raise pytest.UsageError(f"--explore-replay {replay!r}: {err}") from None
    html = config.getoption("explore_html")
    return _Options(profile, ini, cli, config.rootpath / corpus,
                    bool(config.getini("explore_save")) if save is None else save,
                    config.getoption("explore_replay_only"), replay,
                    config.getoption("explore_show_statistics"),
                    Path(html).absolute() if html else None)


def _check(layer: dict[str, object] | None, name: str, source: str,
           raw: str | None = None) -> object:
    """The setting ``name`` (``layer``, or the text ``raw``) checked by the settings model;
    a usage error naming ``source`` (the option or ini key) if it is wrong."""
    from explorer._settings import Settings, SettingsError, coerce_text

    try:
        if layer is None:
            layer = {name: coerce_text(name, raw or "")}
        Settings.merged(layer)
    except SettingsError as err:
        raise pytest.UsageError(err.at(source)) from None
    return layer[name]


def pytest_report_header(config: pytest.Config) -> str | None:
    if config.get_verbosity() < 1:
        return None
    options = config.stash[_OPTIONS]
    return (f"explorer: profile {options.profile!r}, corpus {options.corpus} "
            f"({'save' if options.save else 'no save'}"
            f"{', replay only' if options.replay_only else ''})")


# -- collection ---------------------------------------------------------------------------


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Module | pytest.Class, name: str,
                              obj: object) -> Any:
    # Outermost wrapper: it sees the items after every other plugin (pytest-asyncio
    # replaces async test items with its own item class in a wrapper of this hook).
    result = yield
    if not result or not inspect.iscoroutinefunction(getattr(obj, "__func__", obj)):
        return result
    if isinstance(result, list):
        return [_take_over(node) if _is_explored(node) else node for node in result]
    return _take_over(result) if _is_explored(result) else result


def _is_explored(node: object) -> bool:
    return isinstance(node, pytest.Function) and node.get_closest_marker("explore") is not None


def _take_over(item: pytest.Function) -> pytest.Function:
    """Make ``item`` a plain :class:`pytest.Function` that only this plugin runs."""
    original = item.obj
    cell: list[pytest.Function] = []
    stand_in = _stand_in(original, cell)
    if type(item) is not pytest.Function:  # another plugin's item class: build a plain one
        params = getattr(item, "callspec", None)
        item = pytest.Function.from_parent(
            item.parent, name=item.name, callspec=params, callobj=stand_in,
            fixtureinfo=item._fixtureinfo, originalname=item.originalname,
            keywords={params.id: True} if params is not None and params.id else None)
    else:
        item.obj = stand_in
    # Before the test's own trio mark is dropped; a class's or module's mark stays.
    item.stash[_TRIO] = item.get_closest_marker(TRIO_MARK) is not None
    _drop_foreign_marks(item)
    cell.append(item)
    item.stash[_ORIGINAL] = original
    item.stash[_PARAMS] = item.name[len(item.originalname):]
    item.stash[_FIXTURES] = _plan_fixtures(item)
    return item


def _plan_fixtures(item: pytest.Function) -> FixturePlan:
    from explorer._pytest_fixtures import plan_fixtures

    return plan_fixtures(item)


def _stand_in(original: Callable[..., Any], cell: list[pytest.Function]) -> Callable[..., None]:
    """A synchronous function in the test's place, so that async plugins leave it alone.

    The plugin's ``pytest_pyfunc_call`` runs explored tests itself; if some other plugin
    calls the item's function instead, this explores the test just the same.
    """

    @functools.wraps(original)
    def explored_test(**kwargs: Any) -> None:
        __tracebackhide__ = True
        _run(cell[0], kwargs)

    # A trio mark of the test's class or module makes pytest-trio wrap the test function
    # in its own runner (which fails on a plain function); this says it is wrapped already.
    setattr(explored_test, TRIO_WRAPPED_ATTR, True)
    return explored_test


def _drop_foreign_marks(item: pytest.Function) -> None:
    item.own_markers[:] = [m for m in item.own_markers if m.name not in FOREIGN_RUNNER_MARKS]


def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Put each explored test's corpus entries, as items, right before it."""
    if not any(_ORIGINAL in item.stash for item in items):
        return  # no explored test: the corpus is not read, the engine not imported
    from explorer._corpus import Corpus, CorpusError
    from explorer._engine import scenario_name

    options = config.stash[_OPTIONS]
    entries: dict[str, list[CorpusEntry]] = {}
    bad: list[CorpusError] = []
    for entry in Corpus(options.corpus).entries():
        if isinstance(entry, CorpusError):
            bad.append(entry)
        else:
            entries.setdefault(entry.scenario, []).append(entry)
    kept: list[pytest.Item] = []
    deselected: list[pytest.Item] = []
    for item in items:
        if _ORIGINAL not in item.stash:
            kept.append(item)
            continue
        kept.extend(CorpusFileError.for_error(session, error) for error in bad)
        bad = []  # once, just before the first explored test
        assert isinstance(item, pytest.Function)
        scenario = scenario_name(item.stash[_ORIGINAL]) + item.stash[_PARAMS]
        if options.replay is None:  # --explore-replay runs the one schedule it names
            siblings = [_corpus_item(item, entry) for entry in entries.get(scenario, ())]
            kept.extend(siblings)
            # Under pytest-xdist a sibling may run on another worker: what it reports
            # there is known only from the entry it replays.
            item.stash[_SIBLINGS] = {sibling.stash[_ENTRY].signature(): sibling.nodeid
                                     for sibling in siblings}
        (deselected if options.replay_only else kept).append(item)
    items[:] = kept
    if deselected:
        config.hook.pytest_deselected(items=deselected)


def _corpus_item(item: pytest.Function, entry: CorpusEntry) -> pytest.Function:
    """A sibling of ``item`` that replays one corpus entry: ``test_x[corpus v1:3=1]``."""
    original = item.stash[_ORIGINAL]
    params = getattr(item, "callspec", None)
    ids = item.stash[_PARAMS][1:-1]
    label = f"{ids}-corpus {entry.schedule}" if ids else f"corpus {entry.schedule}"
    cell: list[pytest.Function] = []
    # The name carries the parameter ids, so the callspec must not add them again (pytest
    # 9 builds the node id from the original name plus the callspec's ids).
    sibling = pytest.Function.from_parent(
        item.parent, name=f"{item.originalname}[{label}]", callobj=_stand_in(original, cell),
        callspec=dataclasses.replace(params, _idlist=[]) if params is not None else None,
        fixtureinfo=item._fixtureinfo)
    _drop_foreign_marks(sibling)
    cell.append(sibling)
    sibling.stash[_ORIGINAL] = original
    sibling.stash[_PARAMS] = item.stash[_PARAMS]
    sibling.stash[_TRIO] = item.stash.get(_TRIO, False)
    sibling.stash[_ENTRY] = entry
    sibling.stash[_FIXTURES] = _plan_fixtures(sibling)
    return sibling


class CorpusFileError(pytest.Item):
    """A corpus file that cannot be used, reported as an error; the other items still run."""

    error: CorpusError

    @classmethod
    def for_error(cls, session: pytest.Session, error: CorpusError) -> CorpusFileError:
        try:
            name = str(error.path.relative_to(session.config.rootpath))
        except ValueError:
            name = str(error.path)
        item = cls.from_parent(session, name=name, path=error.path, nodeid=name)
        item.error = error
        return item

    def setup(self) -> None:
        # An error at setup is reported as an ERROR; pytrace=False shows just the message.
        pytest.fail(str(self.error), pytrace=False)

    def runtest(self) -> None:
        """Never reached: :meth:`setup` always fails."""

    def reportinfo(self) -> tuple[Path, None, str]:
        return self.path, None, f"corpus file {self.name}"


# -- running ------------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if _ORIGINAL in pyfuncitem.stash:
        funcargs = pyfuncitem.funcargs
        # The test's own arguments, as pytest's default pyfunc_call computes them.
        # (Fixtures set up per schedule are not among them: the run sets them up.)
        _run(pyfuncitem, {arg: funcargs[arg] for arg in pyfuncitem._fixtureinfo.argnames
                          if arg in funcargs})
        return True
    if (any(mark.name == "explore" for mark in pyfuncitem.own_markers)
            and LINEARIZABILITY_FIXTURE not in pyfuncitem.fixturenames):
        # A plain test that runs a linearizability check may carry the marker: its
        # settings then apply to the check, and the nightly job collects it.
        pytest.fail(_not_async(pyfuncitem), pytrace=False)
    return None


def _not_async(item: pytest.Function) -> str:
    from explorer._explored import EXPLORED_ATTR

    if getattr(item.obj, EXPLORED_ATTR, False):
        return (f"{item.nodeid} is decorated with @explored and marked "
                "@pytest.mark.explore; use one of them: remove @explored and put its "
                "settings in the marker.")
    return (f"{item.nodeid} is marked @pytest.mark.explore but is not an 'async def' "
            "function. The explorer runs the test body once per schedule on its controlled "
            f"event loop; define it as 'async def {item.originalname}(...)', or remove the "
            "marker.")


def _run(item: pytest.Function, kwargs: dict[str, Any]) -> None:
    __tracebackhide__ = True
    from explorer._explored import BoundTest
    from explorer._pytest_fixtures import FixturedTest, FixturePlan

    plan = item.stash.get(_FIXTURES, FixturePlan())
    kwargs = {name: value for name, value in kwargs.items() if name not in plan.managed}
    test = (FixturedTest(item.stash[_ORIGINAL], item, plan, kwargs, suffix=item.stash[_PARAMS])
            if plan.managed else
            BoundTest(item.stash[_ORIGINAL], (), kwargs, suffix=item.stash[_PARAMS]))
    entry = item.stash.get(_ENTRY, None)
    if entry is None:
        if plan.shared:
            item.warn(SharedFixtureWarning(
                f"{item.nodeid} is explored and uses {plan.describe_shared()}: pytest sets "
                "it up once, and every schedule shares its value, so state it keeps "
                "carries from one schedule to the next (a race may then be reported as "
                "nondeterminism). Make it function-scoped (the explorer sets "
                "function-scoped fixtures up for every schedule), or filter this warning "
                "if the value holds no state the test changes."))
        _explore(item, test)
    else:
        _replay(item, test, entry)


def _settings(item: pytest.Function, options: _Options,
              checked: dict[str, object] | None = None) -> Settings:
    """The test's settings; ``checked`` (a linearizability check's own keywords) sits
    between its marker and the command line."""
    from explorer._settings import Settings, SettingsError

    marked: dict[str, object] = {}
    for mark in reversed(list(item.iter_markers("explore"))):  # the closest marker wins
        if mark.args:
            pytest.fail(f"{item.nodeid}: @pytest.mark.explore takes settings by name, like "
                        f"@pytest.mark.explore(max_schedules=100); got {mark.args!r}",
                        pytrace=False)
        marked.update(mark.kwargs)
    if "runtime" not in marked and (item.stash.get(_TRIO, False)
                                    or item.get_closest_marker(TRIO_MARK) is not None):
        marked["runtime"] = "trio"  # pytest-trio's mark: a trio test
    backend = item.funcargs.get("anyio_backend") if hasattr(item, "funcargs") else None
    if isinstance(backend, tuple) and backend:
        backend = backend[0]  # anyio's ("trio", {options}) form
    if "runtime" not in marked and backend == "trio":
        marked["runtime"] = "trio"  # anyio's plugin runs this parametrization under trio
    try:
        return Settings.merged({"profile": options.profile}, options.ini, marked, checked,
                               options.cli, where=f"@pytest.mark.explore on {item.nodeid}")
    except SettingsError as err:
        pytest.fail(str(err), pytrace=False)


def _explore(item: pytest.Function, test: BoundTest) -> None:
    from explorer._engine import explore
    from explorer._errors import DidNotReproduce, UsageError
    from explorer._failure import ScheduleFailure

    options = item.config.stash[_OPTIONS]
    settings = _settings(item, options)
    if options.replay is not None:
        _replay_schedule(item, test, options.replay, settings)
        return
    ledger = item.config.stash[_LEDGER]
    try:
        result = explore(test, raise_on_failure=False, settings=settings)
    except (UsageError, DidNotReproduce) as err:
        pytest.fail(f"{item.nodeid}: {err}", pytrace=False)
    except ScheduleFailure as raised:  # @explorer.reproduce raises it directly
        _fail(item, raised)
    if options.statistics:
        ledger.statistics.append(_statistics(item, result))
    failure = result.failure
    if failure is not None:
        if options.save:
            from explorer._corpus import save_for_test

            _, added = save_for_test(options.corpus, failure, item.nodeid,
                                     item.config.rootpath)
            if added is not None:
                ledger.saved.append(added)
        signature = tuple(failure.outcome.signature())
        shown = ledger.reported.get(failure.scenario, {}).get(signature)
        if shown is None and hasattr(item.config, "workerinput"):  # a pytest-xdist worker
            shown = item.stash.get(_SIBLINGS, {}).get(signature)
        if shown is not None and failure.strategy.get("name") != "reproduce":
            # The corpus entry that runs just before this test failed this way already,
            # with the whole story: say so in one line instead of printing it again.
            where = failure.outcome.location
            pytest.fail(f"{item.nodeid} still fails: {failure.kind}"
                        f"{f' at {where.short}' if where else ''}, as its corpus entry "
                        f"does (the story is printed once, under {shown})", pytrace=False)
        _fail(item, failure)
    item.add_report_section("call", "explorer", f"{result.schedules} schedule(s) passed; "
                                                f"covered {result.coverage}")


@pytest.fixture
def linearizability(request: pytest.FixtureRequest) -> LinearizabilityCheck:
    """``linearizability.check(factory, operations, **options)``: a linearizability check
    (:func:`explorer.check_linearizable`) under the session's settings (profile, ini file,
    ``@pytest.mark.explore`` on the test, the command line) and corpus: saved failures of
    the check are replayed first, new ones saved and listed in the corpus summary."""
    from explorer._linearize._pytest import LinearizabilityCheck, Session

    item = request.node
    assert isinstance(item, pytest.Function)
    options = item.config.stash[_OPTIONS]
    ledger = item.config.stash[_LEDGER]
    session = Session(functools.partial(_settings, item, options), options.corpus,
                      item.config.rootpath, options.save, options.replay_only,
                      options.replay, options.statistics, ledger.fixed, ledger.diverged,
                      ledger.saved, ledger.statistics)
    return LinearizabilityCheck(item, session)


def _shown(item: pytest.Function, path: Path) -> str:
    """``path`` relative to the rootdir where it is inside it."""
    from explorer._corpus import shown_path

    return shown_path(path, item.config.rootpath)


def _statistics(item: pytest.Function, result: Any) -> str:
    """``--explore-show-statistics`` for one explored test, in the manner of Hypothesis's
    ``--hypothesis-show-statistics``."""
    from explorer._settings import format_duration

    shares = result.statistics.get("schedules")  # a portfolio's runs per member strategy
    lines = [f"{item.nodeid}:",
             f"  - {result.schedules} schedule(s), {result.distinct} distinct "
             f"interleaving(s), {result.steps} step(s), in "
             f"{format_duration(result.elapsed)}"
             f"{' (space exhausted)' if result.exhausted else ''}",
             f"  - strategy: {result.strategy.get('via') or result.strategy.get('name', '?')}"]
    if isinstance(shares, dict) and len(shares) > 1:  # a portfolio: how it split the runs
        total = sum(v for v in shares.values() if isinstance(v, int | float)) or 1
        lines.append("  - strategy shares: " + ", ".join(
            f"{name} {100 * count / total:.0f}%" for name, count in shares.items()
            if isinstance(count, int | float)))
    lines.append(f"  - {'failed: ' + result.failure.kind if result.failure else 'passed'}; "
                 f"covered {result.coverage}")
    return "\n".join(lines)


def _replay_schedule(item: pytest.Function, test: BoundTest, schedule: str,
                     settings: Settings) -> None:
    """``--explore-replay``: run only ``schedule``; fail with its story if it fails."""
    __tracebackhide__ = True
    from explorer._engine import run
    from explorer._errors import ReplayDivergence
    from explorer._failure import ScheduleFailure
    from explorer._schedule import Schedule

    parsed = Schedule.parse(schedule)
    try:
        result = run(test, schedule=parsed, runtime=settings.runtime,
                     max_steps=settings.max_steps, run_timeout=settings.run_timeout,
                     strict=False)
    except ReplayDivergence as err:  # pragma: no cover - a lenient replay does not raise it
        pytest.fail(f"{item.nodeid}: --explore-replay {schedule}: {err}", pytrace=False)
    if not result.outcome.failed:
        item.add_report_section("call", "explorer", f"the schedule {schedule} passes "
                                                    f"({result.steps} steps)")
        return
    failure = ScheduleFailure(result.outcome, parsed, result.trace,
                              scenario=str(getattr(test, "__module__", "?")) + "."
                              + test.__qualname__, strategy={"name": "reproduce"},
                              runtime=settings.runtime)
    _fail(item, failure, f"--explore-replay {schedule}: the schedule fails.")


def _replay(item: pytest.Function, test: BoundTest, entry: CorpusEntry) -> None:
    from explorer._regressions import DIVERGED, FIXED, CorpusReplay, replay_entry

    runtime = _settings(item, item.config.stash[_OPTIONS]).runtime
    if entry.runtime != runtime:
        # The entry replays under the runtime it recorded; a test that now runs under
        # another one is other code as far as the entry is concerned.
        report = CorpusReplay(entry.path, DIVERGED,
                              f"it was recorded under the {entry.runtime} runtime, but the "
                              f"test now runs under {runtime}", entry)
    else:
        report = replay_entry(entry, test)
    ledger = item.config.stash[_LEDGER]
    if report.status == FIXED:
        ledger.fixed.append(f"{item.nodeid} "
                            + report.detail.replace(str(entry.path), _shown(item, entry.path)))
        return
    if report.status == DIVERGED:
        ledger.diverged.append(
            f"{item.nodeid}: {_shown(item, entry.path)} no longer fits the code; delete it "
            "(exploring the test saves the failure again if it still exists)")
        # Reported at the test's location, like a skip marker, not at this line.
        raise pytest.skip.Exception(f"corpus entry {_shown(item, entry.path)}: {report.detail}",
                                    _use_item_location=True)
    ledger.reported.setdefault(report.failure.scenario, {})[
        tuple(report.failure.outcome.signature())] = item.nodeid
    _fail(item, report.failure, f"Corpus entry {_shown(item, entry.path)}: {report.detail}.")


def _fail(item: pytest.Function, failure: ScheduleFailure, header: str | None = None
          ) -> NoReturn:
    __tracebackhide__ = True
    item.add_report_section("call", "explorer", f"Full trace of the failing schedule "
                                                f"({len(failure.trace.steps)} steps):\n"
                                                f"{failure.trace}")
    lines = [*([header, ""] if header else []), str(failure)]
    plan = item.stash.get(_FIXTURES, None)
    if failure.outcome.kind == "nondeterminism" and plan is not None and plan.shared:
        lines.append(f"{item.stash[_ORIGINAL].__name__} uses {plan.describe_shared()}, set "
                     "up once and shared by every schedule: state it kept from an earlier "
                     "schedule is "
                     "the likely reason the same schedule ran differently. Make it "
                     "function-scoped, so that every schedule gets a fresh value.")
    command = f"pytest {_test_nodeid(item)} --explore-replay '{failure.schedule}'"
    if failure.strategy.get("name") != "reproduce":
        lines.append(f"To run just this schedule: {command}\n(or add "
                     f"@explorer.reproduce({str(failure.schedule)!r}) under "
                     f"@pytest.mark.explore on {item.stash[_ORIGINAL].__name__}).")
    options = item.config.stash[_OPTIONS]
    if options.html is not None:
        corpus = failure.corpus_path
        report = failure.report(corpus_path=_shown(item, corpus) if corpus else None)
        item.config.stash[_LEDGER].failures.append(
            {"nodeid": item.nodeid, "command": command, "report": report.to_json()})
    pytest.fail("\n".join(lines), pytrace=False)


def _test_nodeid(item: pytest.Function) -> str:
    """The node id of the explored test ``item`` is (or whose corpus entry it replays)."""
    parent = item.parent.nodeid if item.parent is not None else ""
    name = f"{item.stash[_ORIGINAL].__name__}{item.stash.get(_PARAMS, '')}"
    return f"{parent}::{name}" if parent else name


# -- reporting ----------------------------------------------------------------------------


#: The key of the ledger in a pytest-xdist worker's ``workeroutput``.
WORKER_OUTPUT_KEY: Final = "explorer_ledger"


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist a worker prints nothing the user sees: it hands its ledger to
    # the controller, which prints one summary (and writes one HTML report) for all.
    ledger = session.config.stash.get(_LEDGER, None)
    workeroutput = getattr(session.config, "workeroutput", None)
    if ledger is not None and isinstance(workeroutput, dict):
        workeroutput[WORKER_OUTPUT_KEY] = ledger.to_json()


@pytest.hookimpl(optionalhook=True)  # a hook of pytest-xdist, called on the controller
def pytest_testnodedown(node: Any, error: object) -> None:
    ledger = node.config.stash.get(_LEDGER, None)
    output = getattr(node, "workeroutput", None)
    if ledger is not None and isinstance(output, dict):
        ledger.merge(output.get(WORKER_OUTPUT_KEY))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    config = terminalreporter.config
    ledger = config.stash.get(_LEDGER, None)
    if ledger is None or hasattr(config, "workeroutput"):
        return
    if ledger.statistics:
        terminalreporter.section("explorer statistics")
        for block in sorted(ledger.statistics):  # workers finish in any order
            terminalreporter.line(block)
    options = config.stash[_OPTIONS]
    if options.html is not None:
        _write_html(options.html, ledger)
        terminalreporter.line(f"explorer: wrote {options.html} "
                              f"({len(ledger.failures)} failure(s))")
    if not (ledger.fixed or ledger.diverged or ledger.saved):
        return
    terminalreporter.section("explorer corpus")
    for title, lines in (("fixed", ledger.fixed), ("diverged", ledger.diverged),
                         ("saved", ledger.saved)):
        for line in sorted(lines):
            terminalreporter.line(f"{title.upper()} {line}")


def _write_html(path: Path, ledger: _Ledger) -> None:
    """One page with a section per failure of the explored tests (none: says so)."""
    import html

    from explorer._failure_record import FailureReport
    from explorer._files import write_atomically
    from explorer._html import _CSS, render_failure  # the page style of every report

    sections = []
    for n, shown in enumerate(ledger.failures):
        report = FailureReport.from_json(shown["report"])
        sections.append(f"<h2>{html.escape(str(shown['nodeid']))}</h2>")
        sections.append(render_failure(report, anchor=f"failure-{n}",
                                       command=str(shown["command"])))
    title = "Explored tests: failures"
    body = sections or ["<p>No explored test failed.</p>"]
    write_atomically(path, "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{title}</title><style>{_CSS}</style></head><body>", f"<h1>{title}</h1>",
        *body, "</body></html>"]) + "\n")
