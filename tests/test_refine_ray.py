"""`prox refine --executor ray` on a local Ray instance (slow; needs `pip install "prox[ray]"`)."""
from __future__ import annotations

import json

import pytest

from test_refine_e2e import dev_rows, read_outcome, run


@pytest.mark.slow
def test_ray_executor_local_instance(tmp_path):
    ray = pytest.importorskip("ray", reason="ray not installed (pip install 'ray[default]')")
    rows = dev_rows(20)
    for i in range(2):
        (tmp_path / f"part{i}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[i * 10:(i + 1) * 10]))
    import os
    from pathlib import Path

    tests, src = Path(__file__).resolve().parent, Path(__file__).resolve().parents[1] / "src"
    # workers must import the test refiner module and prox
    ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True,
             runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join([str(src), str(tests)])}})
    try:
        stats = run([tmp_path / "part*.jsonl"], tmp_path / "out", executor="ray", tasks=2,
                    ray={"cpus_per_task": 1, "mem_per_cpu_gb": 0.5})
    finally:
        ray.shutdown()
    assert stats["documents"]["docs_in"] == 20 and stats["balanced"] and stats["complete"]
    ids = [r["id"] for o in ("kept", "dropped", "failed") for r in read_outcome(tmp_path / "out", o)]
    assert sorted(ids) == sorted(r["id"] for r in rows)
