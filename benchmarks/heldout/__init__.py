"""Held-out scenarios for the services Bar: three small applications written the way an
application developer writes them (SQLAlchemy async over aiosqlite, an asyncio streams
server, an aiohttp application), each with a buggy and a fixed version, and a runner
(:mod:`benchmarks.heldout.bar`) that measures them under the default strategy, a
systematic search within 2 deviations, faults, and the refusal of unserved addresses.

Each scenario starts everything it uses inside itself and asserts its invariant at the end.
"""
