"""Smoke test of the environment throughput benchmark (benchmarks/envs.py) through its command line."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_env_benchmark_json_smoke(tmp_path):
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "benchmarks/envs.py", "--json", "--quick", "--envs", "ipd,matrix_pd",
           "--batch-sizes", "1,4", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)  # stdout holds the JSON document and nothing else
    assert json.loads(out.read_text()) == doc
    for field in ("backend", "device", "jax_version", "cpu_count", "timestamp", "settings", "results", "peers"):
        assert field in doc, field
    assert doc["settings"]["steps"] == 100 and doc["settings"]["repeats"] == 3
    rows = {(r["env"], r["batch_size"]): r for r in doc["results"]}
    assert sorted(rows) == [("ipd", 1), ("ipd", 4), ("matrix_pd", 1), ("matrix_pd", 4)]
    for (env, batch), r in rows.items():
        assert r["steps_per_s"] > 0 and r["compile_s"] > 0 and len(r["runs_s"]) == 3
        assert r["num_agents"] == 2 and r["agent_steps_per_s"] == 2 * r["steps_per_s"]
        assert abs(r["steps_per_s"] - batch * r["steps"] / r["median_s"]) < 1e-6 * r["steps_per_s"]
    assert "jaxmarl" in doc["peers"]
