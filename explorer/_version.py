"""The explorer's version, apart from the package's namespace (which loads names lazily and
names every module under ``TYPE_CHECKING``): modules that record the version (corpus
entries) import it from here, below everything else."""

from __future__ import annotations

__version__ = "0.1.0"
