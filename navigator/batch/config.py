"""Batch configuration (TOML).

The smallest configuration is one line under ``[input]``::

    [input]
    bids = "/data/my_study"          # or: subjects = ["/data/s1_T1.nii.gz", ...]

Everything else has defaults: prepare every subject, resolve the Fox DLPFC target, optimize
the TMS coil placement with the default coil, and export the plan for every navigation format.
The full set of keys is documented in ``docs/batch.md``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from navigator.core.errors import InputError

ALL_STEPS = ("prepare", "targets", "simulate-tms", "simulate-tdcs", "optimize-tms", "optimize-tdcs", "export", "report")
DEFAULT_STEPS = ("prepare", "targets", "optimize-tms", "export", "report")


@dataclass
class BatchConfig:
    """A parsed batch configuration. Paths are absolute."""

    source: Path
    bids: Path | None = None
    subjects: list[Path] = field(default_factory=list)
    output: Path = Path("navigator_batch")
    steps: tuple[str, ...] = DEFAULT_STEPS
    use_t2: bool = True
    targets: list[str] = field(default_factory=lambda: ["fox"])
    step_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    workers: int | None = None
    memory_per_worker_gb: float | None = None
    retries: int = 2

    def params(self, step: str) -> dict[str, Any]:
        return dict(self.step_params.get(step, {}))


def load_config(path: str | Path) -> BatchConfig:
    """Read and validate a batch TOML file (errors name the file and the key)."""
    path = Path(path).resolve()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "no such configuration file") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(path, f"not valid TOML ({exc})") from None
    base = path.parent

    def rel(p: str) -> Path:
        q = Path(p).expanduser()
        return q if q.is_absolute() else (base / q).resolve()

    inp = raw.get("input")
    if not isinstance(inp, dict):
        raise InputError(path, "missing [input] section (give bids = \"PATH\" or subjects = [...])")
    unknown = set(inp) - {"bids", "subjects", "use_t2"}
    if unknown:
        raise InputError(path, f"unknown key(s) in [input]: {', '.join(sorted(unknown))}")
    cfg = BatchConfig(source=path)
    if "bids" in inp:
        cfg.bids = rel(str(inp["bids"]))
        if not cfg.bids.is_dir():
            raise InputError(path, f"[input] bids folder {cfg.bids} does not exist")
    if "subjects" in inp:
        subs = inp["subjects"]
        if not isinstance(subs, list) or not all(isinstance(s, str) for s in subs):
            raise InputError(path, "[input] subjects must be a list of T1 image paths")
        cfg.subjects = [rel(s) for s in subs]
    if cfg.bids is None and not cfg.subjects:
        raise InputError(path, "[input] needs bids = \"PATH\" or subjects = [\"T1 path\", ...]")
    cfg.use_t2 = bool(inp.get("use_t2", True))

    out = raw.get("output", {})
    cfg.output = rel(str(out.get("root", base / "navigator_batch")))

    steps = raw.get("steps", {})
    if "run" in steps:
        run = steps["run"]
        bad = [s for s in run if s not in ALL_STEPS]
        if bad:
            raise InputError(path, f"[steps] run: unknown step(s) {', '.join(bad)}; known: {', '.join(ALL_STEPS)}")
        cfg.steps = tuple(s for s in ALL_STEPS if s in run)  # canonical order
    for name in ALL_STEPS:
        key = name.replace("-", "_")
        section = raw.get(key) or raw.get(name)
        if isinstance(section, dict):
            cfg.step_params[name] = section
    _check_search_params(path, cfg)
    tgt = raw.get("targets", {})
    if "names" in tgt:
        cfg.targets = [str(t) for t in tgt["names"]]
    dask = raw.get("dask", {})
    cfg.workers = dask.get("workers")
    cfg.memory_per_worker_gb = dask.get("memory_per_worker_gb")
    cfg.retries = int(dask.get("retries", 2))
    return cfg


def _check_search_params(path: Path, cfg: BatchConfig) -> None:
    """The optimizer sections are TmsSearch / TdcsSearch parameters (plus the target and the
    coil): an unknown name or value is an error naming the file, before any subject runs."""
    from navigator.core.errors import NavigatorError
    from navigator.optimize.tdcs import TdcsSearch
    from navigator.optimize.tms import TmsSearch

    for step, search, own in (("optimize-tms", TmsSearch, ("target", "coil")), ("optimize-tdcs", TdcsSearch, ("target",))):
        params = {k: v for k, v in cfg.params(step).items() if k not in own}
        try:
            search.from_params(params)
        except (NavigatorError, TypeError) as exc:
            raise InputError(path, f"[{step.replace('-', '_')}] {exc}") from None
