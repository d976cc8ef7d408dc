"""Fixtures of explored tests: set up and torn down for every schedule, in the run.

Each test writes a small project into a fresh directory and runs pytest on it in-process
with ``pytester``, under pytest-asyncio (auto and strict mode) or anyio's plugin.
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# A ticket office: the conftest's fixtures log their setups and teardowns, so that a
# plain test that runs after the explored ones can count them.
CONFTEST = '''
import asyncio

import pytest{extra_import}

LOG = []


class Office:
    def __init__(self):
        self.tickets = 1
        self.sold = []


@{async_fixture}
async def office(counter):
    LOG.append("setup")
    await asyncio.sleep(0)  # opening the till: an await that runs in the controlled loop
    yield Office()
    await asyncio.sleep(0)
    LOG.append("teardown")


@pytest.fixture
def counter():
    return {{"calls": 0}}
'''

TESTS = '''
import asyncio

import pytest

from conftest import LOG


async def sell(office, buyer):
    if office.tickets > 0:
        await asyncio.sleep(0)  # payment
        office.tickets -= 1
        office.sold.append(buyer)


async def peek(office):
    await asyncio.sleep(0)
    return office.tickets


@pytest.mark.explore(strategy="random", seed=3, max_schedules=12){anyio}
async def test_each_schedule_gets_a_fresh_office(office, counter):
    assert office.sold == [] and counter == {{"calls": 0}}
    counter["calls"] += 1
    await asyncio.gather(peek(office), peek(office))
    office.sold.append("left over")  # would break the next schedule if it were shared


@pytest.mark.explore(strategy="systematic"){anyio}
async def test_two_buyers_one_ticket(office):
    await asyncio.gather(sell(office, "ann"), sell(office, "bob"))
    assert len(office.sold) <= 1, office.sold


def test_every_setup_was_torn_down():
    assert LOG.count("setup") >= 12
    assert LOG.count("setup") == LOG.count("teardown")
'''


def _project(pytester: pytest.Pytester, *, async_fixture: str, extra_import: str = "",
             anyio: str = "", ini: str = "") -> None:
    pytester.makeconftest(CONFTEST.format(async_fixture=async_fixture,
                                          extra_import=extra_import))
    pytester.makepyfile(test_office=TESTS.format(anyio=anyio))
    pytester.makeini(f"[pytest]\nasyncio_default_fixture_loop_scope = function\n{ini}")


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:trio", "-p", "no:hypothesispytest",
                              "-p", "no:randomly", "--explore-no-save", *args)


def _check(result: pytest.RunResult) -> None:
    result.assert_outcomes(passed=2, failed=1)
    out = result.stdout.str()
    # A real race, reported as one (not as nondeterminism from a shared office).
    assert "test_office.test_two_buyers_one_ticket failed (assertion at test_office.py:" \
        in out, out
    assert "nondeterminism" not in out
    # The fixture's await ran under the explorer: the story names the conftest's lines.
    assert "conftest.py:" in out


def test_pytest_asyncio_auto_mode(pytester: pytest.Pytester) -> None:
    _project(pytester, async_fixture="pytest.fixture", ini="asyncio_mode = auto")
    _check(_run(pytester, "-p", "asyncio"))


def test_pytest_asyncio_strict_mode(pytester: pytest.Pytester) -> None:
    _project(pytester, async_fixture="pytest_asyncio.fixture",
             extra_import="\nimport pytest_asyncio", ini="asyncio_mode = strict")
    _check(_run(pytester, "-p", "asyncio"))


def test_anyio_plugin(pytester: pytest.Pytester) -> None:
    _project(pytester, async_fixture="pytest.fixture", anyio="\n@pytest.mark.anyio")
    with (pytester.path / "test_office.py").open("a") as module:
        module.write("\n\n@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'\n")
    _check(_run(pytester, "-p", "no:asyncio"))


def test_anyio_trio_backend_runs_under_the_trio_runtime(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_backends='''
        import anyio
        import pytest
        import sniffio


        @pytest.fixture
        async def flag():
            await anyio.sleep(0)
            return sniffio.current_async_library()


        @pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
        @pytest.mark.anyio
        @pytest.mark.explore(strategy="random", seed=1, max_schedules=3)
        async def test_backend(flag, anyio_backend):
            async with anyio.create_task_group() as group:
                group.start_soon(anyio.sleep, 0)
                group.start_soon(anyio.sleep, 0)
            assert flag == sniffio.current_async_library() == anyio_backend
    ''')
    _run(pytester, "-p", "no:asyncio").assert_outcomes(passed=2)


def test_parametrized_fixture_request_and_finalizers(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_param='''
        import asyncio

        import pytest

        FINALIZED = []


        @pytest.fixture(params=[1, 2])
        def stock(request):
            request.addfinalizer(lambda: FINALIZED.append(request.param))
            return {"left": request.param}


        @pytest.fixture
        def tmp_note(tmp_path):  # a fixture of pytest's own, set up once per test
            return tmp_path / "note.txt"


        @pytest.mark.explore(strategy="random", seed=1, max_schedules=5)
        async def test_stock(stock, tmp_note):
            assert stock["left"] in (1, 2)
            stock["left"] -= 1
            await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
            assert tmp_note.parent.is_dir()


        def test_finalized():
            # At least one setup, and so one finalizer, per schedule (a determinism
            # check replays some schedules once more).
            assert FINALIZED.count(1) >= 5 and FINALIZED.count(2) >= 5
    ''')
    _run(pytester, "-p", "no:asyncio").assert_outcomes(passed=3)


SHARED = '''
import asyncio

import pytest


@pytest.fixture(scope="module")
def ledger():
    return {"runs": 0}


@pytest.mark.explore(strategy="random", seed=2, max_schedules=6)
async def test_uses_a_module_ledger(ledger):
    ledger["runs"] += 1
    await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
'''


def test_wider_scoped_fixture_is_warned_about_by_name(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_shared=SHARED)
    result = _run(pytester, "-p", "no:asyncio",
                  "-W", "default::explorer.pytest_plugin.SharedFixtureWarning")
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines([
        "*SharedFixtureWarning: test_shared.py::test_uses_a_module_ledger is explored and "
        "uses the module-scoped fixture 'ledger'*"])
    # A project whose warnings are errors sees it as a failure of the test.
    strict = _run(pytester, "-p", "no:asyncio", "-W", "error::pytest.PytestWarning")
    strict.assert_outcomes(failed=1)


def test_state_carried_over_names_the_fixture(pytester: pytest.Pytester) -> None:
    # The module-scoped ledger makes the same schedule run differently the second time:
    # the explorer's replay of the failing schedule sees another trace.
    pytester.makepyfile(test_carried='''
        import asyncio

        import pytest


        @pytest.fixture(scope="module")
        def visits():
            return {"n": 0}


        async def visit(visits):
            visits["n"] += 1
            for _ in range(visits["n"] % 3):
                await asyncio.sleep(0)


        @pytest.mark.explore(strategy="systematic")
        async def test_carried(visits):
            await asyncio.gather(visit(visits), visit(visits))
            assert visits["n"] < 6
    ''')
    result = _run(pytester, "-p", "no:asyncio", "-W",
                  "ignore::explorer.pytest_plugin.SharedFixtureWarning")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "nondeterminism" in out, out
    assert "test_carried uses the module-scoped fixture 'visits', set up once and shared " \
           "by every schedule" in out


def test_a_fixture_that_raises_fails_the_run_at_its_line(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_broken='''
        import asyncio

        import pytest


        @pytest.fixture
        def inventory():
            raise LookupError("the inventory service is down")


        @pytest.mark.explore(strategy="random", seed=1, max_schedules=3)
        async def test_inventory(inventory):
            await asyncio.gather(asyncio.sleep(0), asyncio.sleep(0))
    ''')
    result = _run(pytester, "-p", "no:asyncio")
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "LookupError: the inventory service is down" in out, out
    assert "at test_broken.py:8)" in out, out
