#!/usr/bin/env bash
# Issue 17's final figures, for a quiet machine: 856 s on 2 idle cores (2026-12-01; quickstart 143 s,
# fixed workload about 4 min, the trace about 9 min of which the static server is 6).
#
#   bash benchmarks/issue17_final.sh
#
# 1. the quickstart run: wall time and peak RSS (/usr/bin/time -v), its server statistics;
# 2. `bench local` (the suite): the fixed workload at N = 1, 8, 32, 64 (64 new tokens, fp32 CPU,
#    one-at-a-time vs ideal padded batch vs the server), then the full quickstart trace (all
#    episodes of benchmarks/traces/quickstart.json.gz) through the static server and the new one,
#    side by side.
# Writes benchmarks/results/issue17_quickstart.{json,log,time.txt} and bench_local.{json,md}.
# Run nothing else meanwhile: the wall times are the point.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD"
results=benchmarks/results
run_dir=$(mktemp -d)/quickstart
mkdir -p "$results"
began=$(date +%s)

echo "[1/2] quickstart run -> $run_dir" >&2
/usr/bin/time -v -o "$results/issue17_quickstart.time.txt" \
    python -m prose_sim run scenarios/quickstart.toml --out "$run_dir" --progress log \
    >"$results/issue17_quickstart.log" 2>&1
python - "$run_dir" "$results" <<'EOF'
import json, re, sys
from pathlib import Path

run_dir, results = Path(sys.argv[1]), Path(sys.argv[2])
timing = (results / "issue17_quickstart.time.txt").read_text()
def field(name):
    return re.search(rf"{re.escape(name)}: (.+)", timing).group(1).strip()
summary = json.loads((run_dir / "summary.json").read_text())
elapsed = field("Elapsed (wall clock) time (h:mm:ss or m:ss)")
parts = [float(p) for p in elapsed.split(":")]
wall = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
row = {
    "command": "python -m prose_sim run scenarios/quickstart.toml --progress log",
    "status": summary.get("status"),
    "wall_s": round(wall, 1),
    "peak_rss_mb": round(int(field("Maximum resident set size (kbytes)")) / 1024, 1),
    "targets": {"wall_s": 180, "peak_rss_mb": 1536},
    "servers": summary.get("servers"),
}
(results / "issue17_quickstart.json").write_text(json.dumps(row, indent=1))
print(json.dumps({k: row[k] for k in ("status", "wall_s", "peak_rss_mb")}))
EOF

echo "[2/2] bench local (fixed workload N=1,8,32,64, then the full trace, static vs new)" >&2
python -m benchmarks local --out "$results"

echo "issue17_final.sh: done in $(( $(date +%s) - began )) s; results in $results" >&2
