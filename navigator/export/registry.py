"""Plugin registry: exporters, importers and pulse-log readers found through entry points.

A plugin is a :class:`Plugin` object (or a list of them) published in the entry-point group
``navigator.plugins``; first-party ones live in ``plugins/navigator_plugins`` and are registered
by navigator's own ``pyproject.toml``, third-party ones by theirs (see ``docs/plugins.md``)::

    [project.entry-points."navigator.plugins"]
    myformat = "my_package.navigator_plugin:PLUGIN"

Discovery uses entry points only: if none are found navigator is not installed (run
``pip install -e .``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from navigator.core.errors import NavigatorError

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "navigator.plugins"

#: Known plugin kinds. "exporter" writes plans (and, when it has ``read``, also imports them);
#: "importer" only reads plans; "pulse-log" reads delivered-pulse logs. Later kinds
#: ("coil-library", "segmenter", "solver") use the same registry.
KINDS = ("exporter", "importer", "pulse-log", "coil-library", "segmenter", "solver")


@dataclass(frozen=True)
class Plugin:
    """What a plugin declares about itself.

    Attributes:
        name: short unique name used on the command line (``--format NAME``).
        kind: one of :data:`KINDS`.
        description: one line shown by ``navigator export --list``.
        extensions: file-name endings it writes/reads, e.g. (".xml",).
        coordinate_space: default space of the coordinates it writes ("ras", "lps", or a
            system-specific name such as "nifti-qform-ras").
        spaces: values accepted for ``--space`` (empty: the format fixes its space).
        coil_axes: the coil-axis convention of the files, in words.
        carries: which plan parts the format holds ("targets", "coil_poses", "entries", ...).
        write: ``write(plan, path, space) -> None`` for exporters.
        read: ``read(path) -> Plan`` for importers (round trip).
        read_pulses: ``read_pulses(path) -> PulseLog`` for pulse-log plugins.
        sniff: ``sniff(path, head) -> bool``: True if this plugin recognises the file
            (``head`` = the first 4 kB as text).
    """

    name: str
    kind: str
    description: str
    extensions: tuple[str, ...]
    coordinate_space: str
    coil_axes: str
    spaces: tuple[str, ...] = ()
    carries: tuple[str, ...] = ()
    write: Callable[..., None] | None = None
    read: Callable[[Path], Any] | None = None
    read_pulses: Callable[[Path], Any] | None = None
    sniff: Callable[[Path, str], bool] | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"plugin {self.name!r}: unknown kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.kind == "exporter" and self.write is None:
            raise ValueError(f"exporter plugin {self.name!r} has no write()")
        if self.kind == "importer" and self.read is None:
            raise ValueError(f"importer plugin {self.name!r} has no read()")
        if self.kind == "pulse-log" and self.read_pulses is None:
            raise ValueError(f"pulse-log plugin {self.name!r} has no read_pulses()")

    @property
    def can_export(self) -> bool:
        return self.write is not None

    @property
    def can_import(self) -> bool:
        return self.read is not None

    def matches_extension(self, path: str | Path) -> bool:
        n = Path(path).name.lower()
        return any(n.endswith(e.lower()) for e in self.extensions)


_CACHE: dict[str, Plugin] | None = None


def _load_entry_points() -> dict[str, Plugin]:
    found: dict[str, Plugin] = {}
    eps = list(entry_points(group=ENTRY_POINT_GROUP))
    if not eps:
        raise NavigatorError(
            f"no navigator plugins found (entry-point group {ENTRY_POINT_GROUP!r} is empty): "
            "navigator is not installed; run pip install -e ."
        )
    for ep in eps:
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken third-party plugin must not break navigator
            log.warning("plugin entry point %s = %s failed to load: %s: %s", ep.name, ep.value,
                        type(exc).__name__, exc)
            continue
        items = obj if isinstance(obj, (list, tuple)) else [obj]
        for p in items:
            if not isinstance(p, Plugin):
                log.warning("plugin entry point %s = %s is not a navigator Plugin (got %s); ignored",
                            ep.name, ep.value, type(p).__name__)
                continue
            if p.name in found and found[p.name] is not p:
                log.warning("two plugins are named %r; keeping the first (%s)", p.name, ep.value)
                continue
            found[p.name] = p
    return found


def discover(reload: bool = False) -> dict[str, Plugin]:
    """All registered plugins by name (cached; ``reload=True`` re-reads the entry points)."""
    global _CACHE
    if _CACHE is None or reload:
        _CACHE = _load_entry_points()
    return dict(_CACHE)


def plugins(kind: str | None = None) -> list[Plugin]:
    """Registered plugins, sorted by name. ``kind="importer"`` also lists exporters that read."""
    out = []
    for p in discover().values():
        if kind is None or p.kind == kind or (kind == "importer" and p.can_import and p.kind == "exporter"):
            out.append(p)
    return sorted(out, key=lambda p: p.name)


def get_plugin(name: str, kind: str | None = None) -> Plugin:
    """The plugin called ``name``; NavigatorError listing the choices if unknown or of the wrong kind."""
    choices = plugins(kind)
    for p in choices:
        if p.name == name:
            return p
    what = f"{kind} " if kind else ""
    raise NavigatorError(
        f"unknown {what}format {name!r}; available: {', '.join(p.name for p in choices) or '(none)'}"
    )


def _head(path: Path) -> str:
    try:
        with open(path, "rb") as fh:
            return fh.read(4096).decode("utf-8", errors="replace")
    except OSError:
        return ""


def guess_plugin(path: str | Path, kind: str) -> Plugin:
    """Pick the plugin of ``kind`` for an existing file: by content (sniff), then by extension."""
    path = Path(path)
    candidates = plugins(kind)
    head = _head(path)
    sniffed = [p for p in candidates if p.sniff is not None and p.sniff(path, head)]
    if len(sniffed) == 1:
        return sniffed[0]
    pool = sniffed or candidates
    by_ext = [p for p in pool if p.matches_extension(path)]
    if len(by_ext) == 1:
        return by_ext[0]
    names = ", ".join(p.name for p in (by_ext or pool))
    raise NavigatorError(f"{path}: cannot tell the file's format; pass --format (one of: {names})")


def call_reader(plugin: Plugin, reader: Callable[[Path], Any], path: Path) -> Any:
    """Run a plugin's ``read``/``read_pulses`` on ``path``; stray errors become one-line InputErrors.

    A reader meets files it was not written for: what it does not catch itself (a KeyError, a
    bad number, undecodable text) is reported as a malformed file of that format, naming the
    file, never as a traceback. Floating-point warnings on garbage values are silenced: the
    values end in a clear refusal (non-finite pose) instead of warnings on stderr.
    """
    import numpy as np

    from navigator.core.errors import InputError

    try:
        with np.errstate(all="ignore"):
            return reader(path)
    except NavigatorError:
        raise
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(path, f"malformed {plugin.name} file ({type(exc).__name__}: {exc})") from None

