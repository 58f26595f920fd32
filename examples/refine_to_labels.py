"""Turn a `prox refine` output folder into line labels: the refiner's removed lines become noisy_lines.

    python examples/refine_to_labels.py REFINE_OUT labels.jsonl

Kept documents only (dropped ones never reach the chunk stage). The labels let
`prox eval lines labels.jsonl -r SPEC` score another refiner against this one (student vs teacher).
"""
from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path


def main() -> None:
    folder, target = Path(sys.argv[1]), Path(sys.argv[2])
    n = 0
    with open(target, "w", encoding="utf-8") as out:
        for path in sorted((folder / "kept").glob("*.jsonl*")):
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    rec = json.loads(line)
                    meta = rec.get("metadata") or {}
                    raw, execution = meta.get("raw_text"), meta.get("execution")
                    if not isinstance(raw, str) or not isinstance(execution, dict):
                        continue
                    lines = raw.split("\n")
                    noisy = sorted({i for a, b in execution.get("removed_ranges") or []
                                    for i in range(max(int(a), 0), min(int(b), len(lines) - 1) + 1)})
                    content = [i for i, t in enumerate(lines) if t.strip() and i not in set(noisy)]
                    uncertain = [i for i, t in enumerate(lines) if not t.strip() and i not in set(noisy)]
                    out.write(json.dumps({"id": rec["id"], "text": raw, "noisy_lines": noisy, "content_lines": content,
                                          "uncertain_lines": uncertain, "source": "teacher", "view": "teacher"},
                                         ensure_ascii=False) + "\n")
                    n += 1
    print(f"{n} teacher-labelled documents -> {target}")


if __name__ == "__main__":
    main()
