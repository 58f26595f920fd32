"""`prox refine --executor slurm` on a real one-node Slurm cluster (slow; root + slurm-wlm + munge).

    apt-get install slurm-wlm munge
    ./run-tests -m slow tests/test_refine_slurm.py

The cluster (`tests/slurm_cluster.py`) is started by the fixture under a temporary folder and
stopped afterwards. The test submits real array jobs through the CLI (datatrove's
`SlurmPipelineExecutor`: sbatch -> srun -> launch_pickled_pipeline), runs one job to the end,
then cancels a second one mid-way with `scancel` and resubmits the same command: the resumed
run must write exactly what the uninterrupted one wrote and regenerate no program that was
cached before the cancel.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slurm_cluster import PARTITION, SlurmCluster, missing_requirements
from test_refine_e2e import FAKE, dev_rows, read_outcome
from fakes import text_hash

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent
DOCS = 24
TASKS = 2
DELAY_S = 0.3  # the test refiner sleeps this long per document and stage: a task takes several seconds
RUN_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    problem = missing_requirements()
    if problem:
        pytest.skip(problem)
    if not (Path(sys.prefix) / "bin" / "activate").is_file():
        pytest.skip(f"the jobs activate this interpreter's venv (--slurm-venv), and {sys.prefix} is not one")
    with SlurmCluster(tmp_path_factory.mktemp("slurm")) as running:
        yield running


def _env(cluster: SlurmCluster) -> dict[str, str]:
    """The submitting environment; sbatch exports it to the jobs (--export=ALL), so they import prox and
    the test refiner through PYTHONPATH. This interpreter's bin folder is taken off PATH: the jobs must
    find datatrove's ``launch_pickled_pipeline`` through ``--slurm-venv`` (checked here) alone."""
    bin_dir = os.path.realpath(Path(sys.prefix) / "bin")
    path = [p for p in os.environ.get("PATH", "").split(os.pathsep) if p and os.path.realpath(p) != bin_dir]
    return {**os.environ, **cluster.env, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(TESTS)]),
            "PATH": os.pathsep.join(path), "OMP_NUM_THREADS": "1"}


def _command(src: Path, out: Path, calls: Path, job: str) -> list[str]:
    return [sys.executable, "-c", "from prox.cli import main; main()", "refine", str(src), "-o", str(out),
            "--refiner", FAKE, "--executor", "slurm", "--slurm-partition", PARTITION, "--tasks", str(TASKS),
            "--batch-size", "2", "--slurm-job-name", job, "--slurm-mem-per-cpu-gb", "1", "--slurm-time", "00:20:00",
            "--slurm-venv", sys.prefix, "-O", f"calls_file={calls}", "-O", f"delay={DELAY_S}",
            "-O", "min_doc_words=120", "--no-progress"]


def _submit(cmd: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "submitted Slurm job" in result.stdout, result.stdout


def _slurm_logs(out: Path) -> str:
    logs = sorted((out / ".prox").rglob("slurm_logs/*.out"))
    return "\n".join(f"== {p}\n{p.read_text(errors='replace')[-1500:]}" for p in logs[-4:])


def _wait_finished(cluster: SlurmCluster, out: Path, job: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        queued = [j for j in cluster.jobs() if j["name"] in (job, f"{job}-stats")]
        if not queued and (out / "stats.json").exists():
            return json.loads((out / "stats.json").read_text())
        if not queued or all(j["reason"] == "DependencyNeverSatisfied" for j in queued):
            pytest.fail(f"the jobs of {job} failed or left the queue without writing stats.json: {queued}\n"
                        f"{_slurm_logs(out)}")
        time.sleep(0.5)
    pytest.fail(f"{job} not finished after {RUN_TIMEOUT_S} s: {cluster.jobs()}\n{_slurm_logs(out)}")


def _cache_ids(out: Path, stage: str, rank: int) -> set[str]:
    path = out / ".prox" / "cache" / f"{stage}-{rank:05d}.jsonl"
    ids = set()
    if path.exists():
        for line in path.read_bytes().splitlines():
            try:
                ids.add(json.loads(line)["id"])
            except (ValueError, KeyError):
                pass  # a line cut by the cancel
    return ids


def _records(out: Path) -> dict[str, list[dict]]:
    return {outcome: read_outcome(out, outcome) for outcome in ("kept", "dropped", "failed")}


@pytest.mark.slow
def test_slurm_run_then_scancel_and_resume_matches(cluster, tmp_path):
    rows = dev_rows(DOCS)
    src = tmp_path / "pages.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = _env(cluster)

    # 1. uninterrupted run, end to end on the cluster
    started = time.monotonic()
    _submit(_command(src, tmp_path / "a", tmp_path / "calls-a.txt", "prox-a"), env)
    stats_a = _wait_finished(cluster, tmp_path / "a", "prox-a")
    uninterrupted_s = time.monotonic() - started
    assert stats_a["complete"] and stats_a["balanced"] and stats_a["documents"]["docs_in"] == DOCS
    assert stats_a["settings"]["executor"] == "slurm"
    assert sorted((tmp_path / "a" / ".prox" / "logs" / "completions").iterdir()) != []
    records_a = _records(tmp_path / "a")
    assert sorted(r["id"] for rs in records_a.values() for r in rs) == sorted(r["id"] for r in rows)
    assert records_a["kept"] and records_a["dropped"]  # both stages did something
    # the jobs really ran under Slurm: one log per array task, with srun's task label
    job_logs = list((tmp_path / "a" / ".prox" / "logs" / "slurm_logs").glob("*.out"))
    assert len(job_logs) >= TASKS

    # 2. the same run, cancelled with scancel while its tasks are generating
    out, calls = tmp_path / "b", tmp_path / "calls-b.txt"
    cmd = _command(src, out, calls, "prox-b")
    _submit(cmd, env)
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline:
        cached = sum(len(_cache_ids(out, "doc", r)) for r in range(TASKS))
        if cached >= 4:
            break
        assert cluster.jobs("prox-b"), f"prox-b left the queue before any cancel\n{_slurm_logs(out)}"
        time.sleep(0.05)
    else:
        pytest.fail(f"no program cached after {RUN_TIMEOUT_S} s\n{_slurm_logs(out)}")
    ids = [j["id"] for j in cluster.jobs() if j["name"] in ("prox-b", "prox-b-stats")]
    cluster.run("scancel", *ids)
    cluster.wait_idle(timeout=60, names=("prox-b", "prox-b-stats"))

    completions = out / ".prox" / "logs" / "completions"
    done = {int(p.name) for p in completions.iterdir()} if completions.exists() else set()
    assert len(done) < TASKS, "every task finished before the cancel: nothing to resume"
    assert not (out / "stats.json").exists()
    for rank in set(range(TASKS)) - done:  # an unfinished task leaves no output behind
        assert not list(out.glob(f"*/{rank:05d}.*"))
    doc_cached = {r: _cache_ids(out, "doc", r) for r in range(TASKS)}
    chunk_cached = {r: _cache_ids(out, "chunk", r) for r in range(TASKS)}
    calls_before = len(calls.read_text().splitlines())
    assert 4 <= sum(map(len, doc_cached.values())) < DOCS

    # 3. resume: the same command again
    _submit(cmd, env)
    stats_b = _wait_finished(cluster, out, "prox-b")
    assert stats_b["complete"] and stats_b["balanced"] and stats_b["documents"]["docs_in"] == DOCS
    assert _records(out) == records_a  # same records, same order, same outcome files
    assert {k: stats_b["documents"][k] for k in ("kept", "dropped", "failed")} == \
        {k: stats_a["documents"][k] for k in ("kept", "dropped", "failed")}

    # nothing cached before the cancel was generated again ...
    by_hash = {text_hash(r["text"]): r["id"] for r in rows}
    all_doc_cached = set().union(*doc_cached.values())
    all_chunk_cached = set().union(*chunk_cached.values())
    rerun_calls = [line.split("\t") for line in calls.read_text().splitlines()[calls_before:]]
    for stage, digest in rerun_calls:
        doc_id = by_hash[digest]
        assert doc_id not in (all_doc_cached if stage == "doc" else all_chunk_cached), f"{stage} program of {doc_id} regenerated"
    # ... and the resumed tasks' counters say so: served from the cache vs generated
    for rank in sorted(set(range(TASKS)) - done):
        task = stats_b["tasks"]["per_task"][rank]
        assert task["doc_programs_cached"] == len(doc_cached[rank])
        assert task["chunk_programs_cached"] == len(chunk_cached[rank])
        assert task["doc_programs_cached"] + task["doc_programs_generated"] == task["docs_in"]
    resumed = [stats_b["tasks"]["per_task"][r] for r in sorted(set(range(TASKS)) - done)]
    assert sum(t["doc_programs_generated"] + t["chunk_programs_generated"] for t in resumed) == len(rerun_calls)
    assert sum(t["doc_programs_cached"] for t in resumed) > 0
    print(f"uninterrupted slurm run: {uninterrupted_s:.1f} s; cancelled after {sum(map(len, doc_cached.values()))} "
          f"doc programs, tasks done before cancel: {sorted(done)}; rerun generated {len(rerun_calls)} programs")


def test_slurm_venv_folder_means_its_activate_script(tmp_path):
    """datatrove writes ``source VENV_PATH`` into every job script: a venv folder must become its
    bin/activate (else each job fails with "is a directory"), and a wrong path is refused up front."""
    from prox.pipeline import RefineConfig, RunError

    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "activate").write_text("# activate\n")
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a", "text": "x"}\n')

    def config(venv_path):
        return RefineConfig(inputs=[str(src)], output_dir=str(tmp_path / "out"), refiner=None, executor="slurm",
                            slurm={"partition": "debug", "venv_path": str(venv_path)})

    for given in (venv, venv / "bin" / "activate"):
        checked = config(given)
        checked.validate()
        assert checked.slurm["venv_path"] == str(venv / "bin" / "activate")
    with pytest.raises(RunError, match="no venv activate script"):
        config(tmp_path / "nowhere").validate()
    with pytest.raises(RunError, match="no venv activate script"):
        config(tmp_path).validate()  # a folder that is not a venv
