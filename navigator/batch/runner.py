"""Run a batch on Dask: a LocalCluster sized to the machine by default, or an existing
scheduler (``--scheduler tcp://host:port``; on SLURM start one with dask-jobqueue, see
docs/batch.md). Each subject is one task (retried when its worker dies); results are gathered
as they complete, with a progress bar, into the group outputs under the output root.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from navigator.batch.config import BatchConfig
from navigator.batch.discover import BatchSubject, discover
from navigator.batch.tasks import SubjectResult, run_subject
from navigator.core.errors import NavigatorError

log = logging.getLogger("navigator")

#: Memory limit per Dask worker (GiB). Peaks measured for one subject: segmentation 2.5 GB,
#: meshing 2.6 GB + 1.2 GB (CGAL child), TMS optimization 6.4 GB (2 mm phantom); Dask restarts a
#: worker that exceeds 95 % of its limit, so the limit keeps a margin above the largest step.
DEFAULT_MEMORY_GB = 10.0


@dataclass
class BatchOutcome:
    results: list[SubjectResult]
    summary_csv: Path | None
    summary_parquet: Path | None
    figures: list[Path]
    seconds: float

    @property
    def failed(self) -> list[SubjectResult]:
        return [r for r in self.results if not r.ok]


def default_workers(memory_per_worker_gb: float = DEFAULT_MEMORY_GB) -> int:
    """Workers that fit the machine: one per core, capped by memory (``memory_per_worker_gb`` each)."""
    import psutil

    cores = os.cpu_count() or 1
    mem_gb = psutil.virtual_memory().total / 2**30
    return max(1, min(cores, int(mem_gb // memory_per_worker_gb)))


def run_batch(
    cfg: BatchConfig,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    dry_run: bool = False,
    on_result: Callable[[SubjectResult, int, int], None] | None = None,
) -> BatchOutcome:
    """Run every subject of ``cfg``; returns the per-subject results and the group outputs."""
    t0 = time.perf_counter()
    subjects = discover(cfg)
    if not subjects:
        raise NavigatorError(f"{cfg.source}: no subjects found (BIDS: sub-*/[ses-*/]anat/*_T1w.nii[.gz])")
    cfg.output.mkdir(parents=True, exist_ok=True)
    if dry_run:
        results = [run_subject(s, cfg, dry_run=True) for s in subjects]
        return BatchOutcome(results, None, None, [], time.perf_counter() - t0)

    from dask.distributed import Client, LocalCluster, as_completed

    mem = cfg.memory_per_worker_gb or DEFAULT_MEMORY_GB
    if scheduler:
        client = Client(scheduler)
        cluster = None
    else:
        n = workers or cfg.workers or default_workers(mem)
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                               memory_limit=f"{mem}GiB", dashboard_address=None)
        client = Client(cluster)
    results: list[SubjectResult] = []
    try:
        futures = {client.submit(run_subject, s, cfg, key=f"subject-{s.subject_id}-{time.time_ns()}",
                                 retries=cfg.retries, pure=False): s for s in subjects}
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                res = fut.result()
            except Exception as exc:  # noqa: BLE001 - a worker that died more often than retries allow
                res = SubjectResult(s.subject_id, str(cfg.output / s.subject_id), error=f"worker failure: {exc}")
            results.append(res)
            if on_result:
                on_result(res, len(results), len(subjects))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    order = {s.subject_id: i for i, s in enumerate(subjects)}
    results.sort(key=lambda r: order.get(r.subject_id, 0))
    from navigator.batch.summary import write_group_outputs

    csv, parquet, figures = write_group_outputs(results, cfg.output)
    return BatchOutcome(results, csv, parquet, figures, time.perf_counter() - t0)
