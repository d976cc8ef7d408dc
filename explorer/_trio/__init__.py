"""The trio runtime: trio's own run loop, with the order of task steps chosen by us.

trio has no public scheduler hook. The runtime drives ``trio._core._run.unrolled_run``
itself (as ``trio.run`` does) with two stand-ins: a run queue (:mod:`._scheduler`) that
answers trio's "which tasks run in this batch" with exactly one task chosen by the
strategy, and a virtual clock (:mod:`._clock`) that jumps to the next deadline when every
task is blocked. :mod:`._selftest` checks the internals this relies on.
"""
