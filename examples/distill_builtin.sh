#!/usr/bin/env bash
# Distil a refiner (the teacher) into the builtin CPU refiner, then score student vs teacher.
#   1. the teacher refines N train pages            (prox refine)
#   2. the builtin trains on that output folder     (prox train builtin --lines FOLDER --docs FOLDER)
#   3. on M held-out dev pages: the teacher refines them, its removed lines become labels, and the
#      distilled builtin is scored against them (student-vs-teacher line F1, prox eval lines);
#      both are also scored against the human gold.
#
#   TEACHER=rules:c4 bash examples/distill_builtin.sh                          # fast smoke teacher
#   TEACHER=transformers TEACHER_ARGS="--chunk-model runs/recipe-cpu/student" bash examples/distill_builtin.sh
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${BENCH:-$ROOT/../shared/benchmarks}"
WORK="${WORK:-$ROOT/runs/distill}"
TEACHER="${TEACHER:-rules:c4}"
TEACHER_ARGS="${TEACHER_ARGS:-}"
N_TRAIN="${N_TRAIN:-300}"
N_EVAL="${N_EVAL:-100}"
PY="${PYTHON:-python}"
NICE="nice -n 10"
mkdir -p "$WORK"

$PY - "$BENCH" "$WORK" "$N_TRAIN" "$N_EVAL" <<'PY'
import gzip, json, sys, itertools, pathlib
bench, work, n_train, n_eval = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
for split, n, name in (("train", n_train, "train-pages.jsonl"), ("dev", n_eval, "dev-gold.jsonl")):
    with gzip.open(bench / f"lines-public-{split}.jsonl.gz", "rt") as fh, open(work / name, "w") as out:
        rows = itertools.islice((r for r in map(json.loads, fh) if r["view"] == "dclm"), n)
        for r in rows:
            out.write(json.dumps(r if split == "dev" else {"id": r["id"], "text": r["text"]}, ensure_ascii=False) + "\n")
PY
# shellcheck disable=SC2086
$NICE prox refine "$WORK/train-pages.jsonl" -o "$WORK/teacher-train" --refiner "$TEACHER" $TEACHER_ARGS --stages chunk
$NICE prox train builtin --lines "$WORK/teacher-train" -o "$WORK/distilled.npz"
# shellcheck disable=SC2086
$NICE prox refine "$WORK/dev-gold.jsonl" -o "$WORK/teacher-dev" --refiner "$TEACHER" $TEACHER_ARGS --stages chunk
$PY "$ROOT/examples/refine_to_labels.py" "$WORK/teacher-dev" "$WORK/dev-teacher-labels.jsonl"
$NICE prox eval lines "$WORK/dev-teacher-labels.jsonl" -r "builtin:$WORK/distilled.npz" -o "$WORK/student-vs-teacher.json" > /dev/null
$NICE prox eval lines "$WORK/dev-gold.jsonl" -r "builtin:$WORK/distilled.npz" -o "$WORK/student-vs-gold.json" > /dev/null
$NICE prox eval lines "$WORK/dev-gold.jsonl" -r builtin -o "$WORK/shipped-builtin-vs-gold.json" > /dev/null
$PY - "$WORK" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
for name in ("student-vs-teacher", "student-vs-gold", "shipped-builtin-vs-gold"):
    r = json.loads((w / f"{name}.json").read_text())
    print(f"{name:26s}", {view: s["ALL"]["micro"] for view, s in r["scores"].items()})
PY
