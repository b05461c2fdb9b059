"""The replay on a Dask cluster: files are partitioned over the workers, each worker replays its files
with the same :class:`~nsgsolve.analyses.replay.Replayer` and sends back the per-file counters, and the
client merges them in file order -- the result a local run gives, whatever the partition.

Workers rebuild the replayer from a small spec (policy file names and options) once per process, so the
resolved policy is never shipped; the policy files and the logs must be readable at the same paths on
every worker (a shared file system, or the same checkout). Dask is an optional extra:
``pip install "nsgsolve[dask]"``.
"""

from __future__ import annotations

import json
from typing import Any

from nsgsolve.errors import UsageError

_REPLAYERS: dict[str, Any] = {}


def _replayer(spec: dict):
    key = json.dumps(spec, sort_keys=True)
    r = _REPLAYERS.get(key)
    if r is None:
        from nsgsolve.analyses.replay import Replayer
        from nsgsolve.importers.loader import load_policy
        from nsgsolve.semantics.resolve import resolve
        from nsgsolve.semantics.servicetags import default_tag_db

        from nsgsolve.importers import parse_param_assignments

        def load(paths):
            return resolve(load_policy(paths, params=parse_param_assignments(spec["param"]),
                                       params_file=spec["params_file"], symbolic=spec["symbolic"], warnings=[]),
                           default_tag_db(spec["service_tags"]))

        r = Replayer(load(spec["policy"]), load(spec["against"]) if spec["against"] else None, spec["guids"],
                     spec["group_prefix"])
        _REPLAYERS[key] = r
    return r


def replay_one(spec: dict, path: str):
    """One file on a worker: its counters (a :class:`~nsgsolve.analyses.replay.Partial`)."""
    return _replayer(spec).replay_file(path)


def replay_dask(spec: dict, files: list[str], address: str, workers: int | None = None):
    """Replay ``files`` on the cluster at ``address`` ('local': a LocalCluster of ``workers`` processes)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(
            "--dask needs Dask, which is not installed",
            'pip install "nsgsolve[dask]" (or run without --dask: --workers N uses this machine)',
        ) from None
    from nsgsolve.analyses.replay import Partial

    cluster = None
    try:
        if address == "local":
            import logging

            # Dask's nanny logs worker shutdown at WARNING; the replay's own output is what users read.
            cluster = LocalCluster(n_workers=workers or 2, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=logging.ERROR)
            client = Client(cluster)
        else:
            try:
                client = Client(address, timeout="20s")
            except (OSError, TimeoutError) as e:
                raise UsageError(f"--dask {address}: cannot reach the scheduler ({e})",
                                 "give the scheduler's address, e.g. tcp://scheduler:8786, or --dask local") from None
        try:
            futures = client.map(replay_one, [spec] * len(files), files, pure=False)
            parts = client.gather(futures)
        finally:
            client.close()
    finally:
        if cluster is not None:
            cluster.close()
    total = Partial()
    for p in parts:
        total.merge(p)
    return total
