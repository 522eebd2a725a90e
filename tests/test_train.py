"""The command line: outputs, resume, determinism and fast, clear failures on bad input."""
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys

import jax
import numpy as np
import pytest

import envs
import train
from jaxmarl_core import sweep
from jaxmarl_core.checkpoint import Checkpoints

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SMALL = ["--algo", "lola_exact", "--env", "ipd", "--seeds", "3", "--set", "num_updates=20", "--quiet"]


def run_cli(*args):
    return subprocess.run([sys.executable, "train.py", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def read_theta(out, step, seeds=3):
    ck = Checkpoints(os.path.join(out, "checkpoints"))
    like = {"state": {"theta": np.zeros((seeds, 2, 5), np.float32)},
            "metrics": {"p_coop": np.zeros((seeds, step, 2, 5), np.float32),
                        "reward_per_step": np.zeros((seeds, step, 2), np.float32)}}
    tree = ck.restore(step, like)
    ck.close()
    return tree


def test_run_writes_all_outputs(tmp_path):
    out = str(tmp_path / "run")
    assert train.main([*SMALL, "--out", out, "--plot"]) == 0
    assert sorted(os.listdir(out)) == ["checkpoints", "config.json", "curves.png", "metrics.csv", "summary.json"]
    with open(os.path.join(out, "metrics.csv")) as f:
        rows = f.read().strip().splitlines()
    assert rows[0].startswith("seed,update,") and "reward_per_step/0" in rows[0]
    assert len(rows) == 1 + 3 * 20
    summary = json.load(open(os.path.join(out, "summary.json")))
    assert summary["seeds"] == 3 and summary["num_updates"] == 20
    assert summary["compile_time_s"] > 0 and summary["updates_per_second"] > 0
    assert summary["compile_cache"] == os.environ["JAXMARL_COMPILE_CACHE"]  # the test session's (conftest)
    final = summary["final"]["reward_per_step/0"]
    assert final["ci95_low"] <= final["mean"] <= final["ci95_high"]
    config = json.load(open(os.path.join(out, "config.json")))["run"]
    assert config["config"]["num_updates"] == 20 and config["algo"] == "lola_exact"
    with open(os.path.join(out, "curves.png"), "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_same_seed_same_metrics(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    assert train.main([*SMALL, "--out", a]) == 0
    assert train.main([*SMALL, "--out", b]) == 0
    assert open(os.path.join(a, "metrics.csv")).read() == open(os.path.join(b, "metrics.csv")).read()
    c = str(tmp_path / "c")
    assert train.main([*SMALL, "--out", c, "--seed", "1"]) == 0
    assert open(os.path.join(a, "metrics.csv")).read() != open(os.path.join(c, "metrics.csv")).read()
    d = str(tmp_path / "d")  # seeds 1 and 2 on their own: the keys, so the rows, of the 3-seed run (up to rounding:
    # XLA need not compute a lane of a vectorised program exactly as the same lane of a narrower one)
    assert train.main([*SMALL, "--out", d, "--seeds", "2", "--first-seed", "1"]) == 0
    whole = np.loadtxt(os.path.join(a, "metrics.csv"), delimiter=",", skiprows=1)
    part = np.loadtxt(os.path.join(d, "metrics.csv"), delimiter=",", skiprows=1)
    assert open(os.path.join(d, "metrics.csv")).readline() == open(os.path.join(a, "metrics.csv")).readline()
    same_seeds = whole[whole[:, 0] >= 1]
    np.testing.assert_array_equal(part[:, :2], same_seeds[:, :2])
    np.testing.assert_allclose(part, same_seeds, rtol=1e-4, atol=1e-6)


def test_seed_batch_changes_speed_not_numbers(tmp_path):
    outs = {b: str(tmp_path / f"b{b}") for b in (0, 2)}  # all 3 seeds vectorised; in pairs, the last one padded
    for b, out in outs.items():
        assert train.main([*SMALL, "--out", out, "--seed-batch", str(b)]) == 0
        assert json.load(open(os.path.join(out, "summary.json")))["seed_batch"] == b
    want = read_theta(outs[0], 20)["state"]["theta"]
    # XLA may order a vectorised reduction differently: float rounding, grown over 20 updates
    np.testing.assert_allclose(read_theta(outs[2], 20)["state"]["theta"], want, rtol=1e-3, atol=1e-4)


def interrupt(full: str, cut: str, keep: int) -> None:
    """``cut``: what a run into ``full`` killed after its checkpoint at update ``keep`` leaves behind."""
    shutil.copytree(full, cut)
    for step in Checkpoints(os.path.join(full, "checkpoints")).steps():
        if step > keep:
            shutil.rmtree(os.path.join(cut, "checkpoints", str(step)))
    for name in ("metrics.csv", "summary.json"):
        os.unlink(os.path.join(cut, name))


def read(out, name="metrics.csv"):
    with open(os.path.join(out, name)) as f:
        return json.load(f) if name.endswith(".json") else f.read()


def swap_states_of_seeds_0_and_1(out, step, monkeypatch):
    """Rewrite checkpoint ``step`` of the run in ``out`` (through ``Checkpoints``) with the states of seeds 0 and 1
    swapped and their metrics left alone, and swap the two seeds' keys in the runs that follow (``sweep.seed_keys``).
    A resume must then write the uninterrupted run's rows up to ``step`` (read from the checkpoint) and the other
    seed's rows after it (trained on from the swapped states); retraining from update 0, or from a state not read
    from the checkpoint, would not."""
    ck = Checkpoints(os.path.join(out, "checkpoints"))
    tree = ck.restore(step, None)  # None: the tree as saved
    ck.close()
    shutil.rmtree(os.path.join(out, "checkpoints", str(step)))  # orbax saves no step over an existing one
    order = np.array([1, 0, *range(2, jax.tree.leaves(tree)[0].shape[0])])
    ck = Checkpoints(os.path.join(out, "checkpoints"))
    ck.save(step, {"state": jax.tree.map(lambda x: x[order], tree["state"]), "metrics": tree["metrics"]})
    ck.close()
    seed_keys = sweep.seed_keys
    monkeypatch.setattr(sweep, "seed_keys", lambda *args: seed_keys(*args)[order])


def rows_after_swap(csv_text, step):
    """``csv_text`` with the rows of seeds 0 and 1 after update ``step`` exchanged (what
    ``swap_states_of_seeds_0_and_1`` implies)."""
    header, *rows = csv_text.splitlines(keepends=True)
    cells = [row.split(",", 2) for row in rows]  # seed, update, metrics
    by_key = {(seed, update): rest for seed, update, rest in cells}
    other = {"0": "1", "1": "0"}
    swapped = [f"{seed},{update},{by_key[other.get(seed, seed), update] if int(update) > step else rest}"
               for seed, update, rest in cells]
    assert swapped != rows  # the seeds' rows differ: the perturbation shows
    return header + "".join(swapped)


def test_resume_after_interruption_reproduces_the_run(tmp_path, monkeypatch):
    full, cut, swapped = str(tmp_path / "full"), str(tmp_path / "cut"), str(tmp_path / "swapped")
    args = [*SMALL, "--checkpoint-every", "5"]
    assert train.main([*args, "--out", full]) == 0
    assert Checkpoints(os.path.join(full, "checkpoints")).steps() == [5, 10, 15, 20]
    interrupt(full, cut, 10)
    assert train.main(["--resume", "--out", cut, "--quiet"]) == 0
    want, got = read_theta(full, 20), read_theta(cut, 20)
    np.testing.assert_array_equal(got["state"]["theta"], want["state"]["theta"])
    assert read(cut) == read(full)
    assert read(cut, "summary.json")["resumed_from_update"] == 10
    assert train.main(["--resume", "--out", cut, "--quiet"]) == 0  # nothing left to train: outputs rewritten
    assert read(cut) == read(full)
    assert read(cut, "summary.json")["resumed_from_update"] == 20
    interrupt(full, swapped, 10)  # the checkpoint is what the resume starts from
    swap_states_of_seeds_0_and_1(swapped, 10, monkeypatch)
    assert train.main(["--resume", "--out", swapped, "--quiet"]) == 0
    assert read(swapped) == rows_after_swap(read(full), 10)


def test_ctrl_c_saves_the_update_reached_and_resume_finishes_the_run(tmp_path, monkeypatch, capsys):
    """Ctrl-C (KeyboardInterrupt) ends the run with status 130 and a checkpoint at the last update finished, off any
    --checkpoint-every grid too; --resume then writes the uninterrupted run's metrics. It lands while train.py waits
    for a chunk's results (the chunk's state already dispatched, its metrics and update count not: here while
    fetching update 8's, in chunks of one update) or between chunks (here: in the progress line of update 10, just
    saved by --checkpoint-every 5, which orbax would not save again)."""
    full = str(tmp_path / "full")
    assert train.main([*SMALL, "--out", full]) == 0  # chunks of 1 update; chunks of 5 give the same numbers
    device_get, progress = jax.device_get, train._Progress.__call__
    fetches = []

    def fetch_interrupted(tree):
        if sys._getframe(1).f_code is train.run.__code__:  # train.run's wait for a chunk's metrics
            fetches.append(1)
            if len(fetches) == 8:
                raise KeyboardInterrupt
        return device_get(tree)

    def progress_interrupted(self, done):
        progress(self, done)
        if done == 10:
            raise KeyboardInterrupt

    cases = [([], (jax, "device_get", fetch_interrupted), 7, [7]),
             (["--checkpoint-every", "5"], (train._Progress, "__call__", progress_interrupted), 10, [5, 10])]
    for i, (flags, patch, reached, steps) in enumerate(cases):
        cut = str(tmp_path / f"cut{i}")
        capsys.readouterr()
        with monkeypatch.context() as m:
            m.setattr(*patch)
            with pytest.raises(SystemExit) as ended:
                train.main([*SMALL, *flags, "--out", cut])
        assert ended.value.code == 130
        assert capsys.readouterr().err == (f"\ninterrupted after update {reached}; continue with: "
                                           f"python train.py --resume --out {cut}\n")
        assert Checkpoints(os.path.join(cut, "checkpoints")).steps() == steps
        assert not os.path.exists(os.path.join(cut, "metrics.csv"))
        assert train.main(["--resume", "--out", cut, "--quiet"]) == 0
        assert read(cut, "summary.json")["resumed_from_update"] == reached
        assert read(cut) == read(full)


ONE_SEED_RUNS = {
    # QMIX's update takes the update's index
    "qmix": ["--algo", "qmix", "--env", "two_step", "--set", "total_steps=96", "--set", "num_envs=4",
             "--set", "batch_size=4", "--set", "learning_starts=8"],
    # MATD3: twin critics, a policy delay across updates, actions drawn at random before warmup_steps
    "matd3": ["--algo", "matd3", "--env", "mpe_simple", "--env-arg", "continuous=true", "--set", "num_envs=2",
              "--set", "rollout_len=5", "--set", "total_steps=120", "--set", "num_sgd=3", "--set", "buffer_size=64",
              "--set", "batch_size=8", "--set", "learning_starts=20", "--set", "warmup_steps=30",
              "--set", "hidden_size=8"],
}


@pytest.mark.parametrize("name", list(ONE_SEED_RUNS))
def test_resume_of_a_replay_learner_on_the_one_seed_path(tmp_path, monkeypatch, name):
    """Seeds run one per call with their replay buffers kept on the device: a run cut after update 4 and resumed
    writes the uninterrupted run's metrics (those of the other seed after update 4, the seeds' states in the checkpoint
    and their keys swapped: the checkpoint, replay buffers included, is what the resume starts from)."""
    full, cut = str(tmp_path / "full"), str(tmp_path / "cut")
    args = [*ONE_SEED_RUNS[name], "--seeds", "2", "--checkpoint-every", "2", "--quiet"]
    assert train.main([*args, "--out", full]) == 0
    assert read(full, "summary.json")["seed_batch"] == 1
    interrupt(full, cut, 4)
    swap_states_of_seeds_0_and_1(cut, 4, monkeypatch)
    assert train.main(["--resume", "--out", cut, "--quiet"]) == 0
    assert read(cut, "summary.json")["resumed_from_update"] == 4
    assert read(cut) == rows_after_swap(read(full), 4)


def test_initialisation_per_seed_gives_the_states_of_the_program_over_the_seeds(tmp_path, monkeypatch):
    """GA-Comm (``Trainer.init_per_seed``): its initialisation compiled for one seed and called per seed gives the
    metrics of the one program over the seeds, and a run resumed on that path reproduces the whole run (seeds 0 and
    1 swapped after the checkpoint, their states in it and their keys swapped: ``swap_states_of_seeds_0_and_1``)."""
    import dataclasses

    import algos

    args = ["--algo", "ga_comm", "--env", "traffic_junction", "--env-arg", "num_cars=3", "--env-arg", "max_steps=5",
            "--seeds", "3", "--set", "total_steps=40", "--set", "num_envs=2", "--set", "rollout_len=5",
            "--set", "hidden_size=8", "--set", "head_dim=4", "--set", "gru_size=4", "--quiet"]
    per_seed, over_seeds, cut = str(tmp_path / "per_seed"), str(tmp_path / "over_seeds"), str(tmp_path / "cut")
    assert train.main([*args, "--checkpoint-every", "2", "--out", per_seed]) == 0
    algo = algos.get("ga_comm")
    assert algo.make_train(envs.make("traffic_junction"), algo.default_config(None)).init_per_seed
    monkeypatch.setitem(algos._REGISTRY, "ga_comm", dataclasses.replace(algo, make_train=lambda *a, **k: (
        dataclasses.replace(algo.make_train(*a, **k), init_per_seed=False))))
    assert train.main([*args, "--checkpoint-every", "2", "--out", over_seeds]) == 0
    monkeypatch.undo()
    want = open(os.path.join(over_seeds, "metrics.csv")).read()
    assert open(os.path.join(per_seed, "metrics.csv")).read() == want
    interrupt(per_seed, cut, 2)
    swap_states_of_seeds_0_and_1(cut, 2, monkeypatch)
    assert train.main(["--resume", "--out", cut, "--quiet"]) == 0
    assert read(cut, "summary.json")["resumed_from_update"] == 2
    assert read(cut) == rows_after_swap(want, 2)


JAX_WORK = re.compile(r"Compiling |Finished (tracing|jaxpr to MLIR|XLA compilation)")  # jax_log_compiles's lines


def main_compiling_nothing(argv, caplog) -> int:
    """``train.main(argv)``, asserting that JAX traced, lowered and compiled nothing in it: with ``jax_log_compiles``
    each is a WARNING line (a new lowering each run, so programs compiled earlier in the session log again)."""
    was = jax.config.jax_log_compiles
    jax.config.update("jax_log_compiles", True)
    seen = len(caplog.records)
    try:
        with caplog.at_level(logging.WARNING, logger="jax"):
            code = train.main(argv)
    finally:
        jax.config.update("jax_log_compiles", was)
    messages = [r.getMessage() for r in caplog.records[seen:] if r.name.startswith("jax")]
    work = [m for m in messages if JAX_WORK.match(m)]
    assert not work, work[:3]
    return code


def test_fresh_run_refuses_a_directory_with_checkpoints(tmp_path, capsys, caplog):
    out = str(tmp_path / "run")
    assert train.main([*SMALL, "--out", out]) == 0
    assert main_compiling_nothing([*SMALL, "--out", out], caplog) == 2
    assert "--resume" in capsys.readouterr().err


BAD = [
    (["--algo", "nope", "--env", "ipd"], ["unknown algorithm 'nope'", "lola_exact", "nl_exact"]),
    (["--algo", "lola_exact", "--env", "nope"], ["unknown environment 'nope'", "ipd", "matrix_pd"]),
    (["--algo", "lola_exact", "--env", "ipd", "--seeds", "0"], ["--seeds"]),
    (["--algo", "lola_exact", "--env", "ipd", "--set", "lr"], ["--set", "key=value"]),
    (["--algo", "lola_exact", "--env", "ipd", "--set", "lrr=1"], ["error: --set: unknown field 'lrr'", "lookahead_lr"]),
    (["--algo", "lola_exact", "--env", "ipd", "--set", "lr=fast"], ["lr", "float"]),
    (["--algo", "lola_exact", "--env", "ipd", "--set", "num_updates=-3"], ["num_updates"]),
    (["--algo", "lola_exact", "--env", "ipd", "--env-arg", "foo=1"], ["--env-arg", "foo", "num_steps"]),
    (["--algo", "lola_exact", "--env", "ipd", "--env-arg", "num_steps=x"], ["num_steps", "int"]),
    (["--algo", "lola_exact", "--env", "ipd", "--env-arg", "num_steps=0"], ["num_steps"]),
    (["--algo", "lola_exact", "--env", "matrix_trap", "--env-arg", "n_agents=3"], ["n_agents"]),
    (["--resume", "--out", "/nonexistent-dir-xyz"], ["--resume", "config.json"]),
    (["--env", "ipd"], ["--algo"]),
    (["--algo", "lola_exact", "--env", "ipd", "--seed-batch", "-1"], ["--seed-batch", ">= 0"]),
    (["--algo", "lola_exact", "--env", "ipd", "--first-seed", "-1"], ["--first-seed", ">= 0"]),
]


@pytest.mark.parametrize("argv,fragments", BAD)
def test_bad_input_fails_fast_with_one_line(argv, fragments, capsys, caplog):
    assert main_compiling_nothing(argv, caplog) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("train.py: error:"), err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


def test_non_writable_out_and_incompatible_pair(tmp_path, capsys, caplog, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = str(blocker / "sub")  # below a file: no directory can be made there
    assert main_compiling_nothing([*SMALL, "--out", out], caplog) == 2
    assert capsys.readouterr().err == f"train.py: error: --out: cannot write to {out!r}: {os.strerror(errno.ENOTDIR)}\n"

    class Opaque(envs.MatrixGame):  # a game without closed-form values
        exact_value = property()
        policy_param_shape = property()

    monkeypatch.setitem(envs._REGISTRY, "opaque_game", lambda: Opaque(game="opaque", table=((0.0,),)))
    assert main_compiling_nothing(["--algo", "lola_exact", "--env", "opaque_game", "--out", str(tmp_path / "x")],
                                  caplog) == 2
    err = capsys.readouterr().err
    assert "cannot run on --env opaque_game" in err and "exact_value" in err


def test_cli_process_exit_status_and_no_traceback(capsys):
    res = run_cli("--algo", "lola_exact", "--env", "ipd", "--seeds", "0")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip().splitlines() == ["train.py: error: --seeds must be a positive integer, got 0"]
    with pytest.raises(SystemExit) as exit_help:  # in this process: a new one would only repeat the imports
        train.main(["--help"])
    out = capsys.readouterr().out
    assert exit_help.value.code == 0 and "lola_exact" in out and "matrix_trap" in out
    with pytest.raises(SystemExit) as exit_list:
        train.main(["--list"])
    out = capsys.readouterr().out
    assert exit_list.value.code == 0 and "nl_exact:" in out and "ipd" in out


def test_cli_process_ends_with_its_outputs_written(tmp_path):
    """``train.py`` ends its process without the interpreter's teardown (``train._exit``): what it printed and wrote
    is all there."""
    out = str(tmp_path / "run")
    res = run_cli(*[a for a in SMALL if a != "--quiet"], "--out", out)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1].endswith(f"outputs in {out}")  # flushed before the process ended
    with open(os.path.join(out, "metrics.csv")) as f:
        assert len(f.read().strip().splitlines()) == 1 + 3 * 20
    assert json.load(open(os.path.join(out, "summary.json")))["num_updates"] == 20


def test_importing_the_registries_compiles_nothing():
    """Every process imports all environments and algorithms: no module-level JAX operation may compile at import."""
    code = "import jax; jax.config.update('jax_log_compiles', True); import envs, algos, train"
    res = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "Compiling" not in res.stderr, res.stderr


def test_gc_paused_restores_the_collector():
    import gc

    assert gc.isenabled()
    with train._gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with train._gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # off before, off after
    finally:
        gc.enable()


def test_seeds_sharded_over_four_cpu_devices_match_one_device(tmp_path):
    one, four = str(tmp_path / "one"), str(tmp_path / "four")
    args = ["--algo", "nl_exact", "--env", "imp", "--seeds", "6", "--set", "num_updates=15", "--quiet"]
    assert train.main([*args, "--out", one]) == 0
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    res = subprocess.run([sys.executable, "train.py", *args, "--out", four], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert len(json.load(open(os.path.join(four, "summary.json")))["devices"]) == 4
    a = np.loadtxt(os.path.join(one, "metrics.csv"), delimiter=",", skiprows=1)
    b = np.loadtxt(os.path.join(four, "metrics.csv"), delimiter=",", skiprows=1)
    assert a.shape == b.shape == (6 * 15, 2 + 2 * 5 + 2)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# On-policy variants share one code path (and tests/algos/test_onpolicy.py runs happo's CLI): in the default suite
# the CLI smoke runs mappo; the others' (10-20 s of compiling each) run with -m slow.
SLOW_CLI = {"ippo", "maa2c", "happo", "hatrpo", "haa2c", "aga_ppo", "cga_ppo"}
# Off-policy actor-critics share one code path: maddpg runs here, ddpg and matd3 with -m slow; haddpg and hatd3 need
# continuous actions, which no environment has by default (tests/algos/test_offpolicy.py runs them on MPE's).
SLOW_CLI |= {"ddpg", "matd3"}
CONTINUOUS_ONLY = {"haddpg", "hatd3"}
# Mean-field learners share one code path: mfac, il and ac run here, mfq (the slowest to compile) with -m slow.
SLOW_CLI |= {"mfq"}
# ga_comm's command-line run (about 19 s of CPU, mostly compiling the bi-GRU in the rollout and the gradient) runs
# with -m slow, beside tests/algos/test_g2anet.py's learning test.
SLOW_CLI |= {"ga_comm"}
# ga_ac: the same bi-GRU in the critic and its gradient, compiled for three losses (about 2 minutes on a loaded CPU).
SLOW_CLI |= {"ga_ac"}
GAME_GRADIENT_PLAY = {"simul_ind", "simul_co", "lookahead", "sos", "sga", "cga", "aga", "svo"}


@pytest.mark.parametrize("algo_name", [pytest.param(name, marks=pytest.mark.slow) if name in SLOW_CLI else name
                                       for name in __import__("algos").list_algos() if name not in CONTINUOUS_ONLY])
def test_every_algorithm_runs_through_the_command_line(algo_name, tmp_path):
    import algos

    # the cheapest compatible environment (cooperative: two_step; game-gradient methods: a two-number game)
    preferred = (["game_tandem"] * (algo_name in GAME_GRADIENT_PLAY) + ["traffic_junction"] * (algo_name == "ga_comm")
                 + ["ipd", "two_step"] + envs.list_envs())
    env_name = next(e for e in preferred if algos.compatible(algo_name, envs.make(e)) is None)
    fields = algos.get(algo_name).default_config(envs.make(env_name)).to_dict()
    if "num_updates" in fields:
        sets = ["--set", "num_updates=2"] + (["--set", "batch_size=4"] if "batch_size" in fields else [])
    elif "rollout_len" in fields:  # on-policy learners: updates of num_envs * rollout_len environment steps
        sets = ["--set", "total_steps=20", "--set", "num_envs=2", "--set", "rollout_len=5", "--set", "hidden_size=8"]
        if "learning_starts" in fields:  # off-policy ones learn from the first update's 10 steps on (before
            # learning_starts every loss is nan, algos/offpolicy/learner.py)
            sets += ["--set", "learning_starts=10", "--set", "batch_size=4"]
    else:  # online learners: updates of steps_per_update environment steps
        sets = ["--set", "total_steps=20", "--set", "steps_per_update=10"]
    # few agents keep the per-agent columns (and the run small)
    sets += {"gaussian_squeeze": ["--env-arg", "n_agents=8"], "ising": ["--env-arg", "size=3"],
             "battle": ["--env-arg", "map_size=12", "--env-arg", "n_per_side=1", "--env-arg", "max_cycles=7"],
             "traffic_junction": ["--env-arg", "num_cars=3", "--env-arg", "max_steps=5", "--set", "head_dim=4",
                                  "--set", "gru_size=4"],
             "dgn_battle": ["--env-arg", "map_size=10", "--env-arg", "n_learners=4", "--env-arg", "n_enemies=2",
                            "--env-arg", "max_cycles=7", "--set", "encoder_size=16", "--set", "num_heads=2",
                            "--set", "head_dim=4", "--set", "buffer_size=256", "--set", "batch_size=4",
                            "--set", "learning_starts=4"],
             }.get(env_name, [])
    out = str(tmp_path / algo_name)
    assert train.main(["--algo", algo_name, "--env", env_name, "--seeds", "2", "--out", out, "--quiet", *sets]) == 0
    summary = read(out, "summary.json")
    assert summary["num_updates"] == 2 and "reward_per_step/0" in summary["final"]
    header, *rows = read(out).splitlines()
    table = np.array([row.split(",") for row in rows], np.float64)
    assert table.shape == (2 * 2, len(header.split(",")))
    bad = [name for name, column in zip(header.split(","), table.T) if not np.isfinite(column).all()]
    assert not bad, f"nan or inf in metrics.csv: {bad}"
    bad = [name for name, stats in summary["final"].items() if not np.isfinite(stats["mean"])]
    assert not bad, f"final mean not finite: {bad}"


@pytest.mark.slow  # about 30 s, nearly all of it compiling the recurrent policy's rollout (twice)
def test_coin_game_trains_a_recurrent_policy_through_the_command_line(tmp_path):
    out = str(tmp_path / "coin")
    argv = ["--algo", "nl_pg", "--env", "coin_game", "--seeds", "2", "--out", out, "--quiet", "--set", "num_updates=2",
            "--set", "batch_size=4", "--set", "hidden=8", "--env-arg", "num_steps=10"]
    assert train.main(argv) == 0
    final = json.load(open(os.path.join(out, "summary.json")))["final"]
    assert 0.0 <= final["own_coin_fraction/0"]["mean"] <= 1.0 and "coins_per_step" in final


@pytest.mark.parametrize("argv,fragment", [
    (["--algo", "lola_pg", "--env", "ipd", "--set", "preset=bogus"], "preset must be one of default, lola_paper"),
    (["--algo", "lola_om", "--env", "imp", "--set", "preset=lola_paper"], "add --env-arg discount=0.9"),
    (["--algo", "lola_dice", "--env", "ipd", "--set", "preset=lola_paper"], "covers nl_pg, lola_pg and lola_om"),
    (["--algo", "nl_exact", "--env", "ipd", "--set", "preset=lola_paper"], "unknown field 'preset'"),
    (["--algo", "lola_dice", "--env", "ipd", "--set", "lookahead=0"], "lookahead must be an integer from 1 to 5"),
    (["--algo", "lola_dice", "--env", "matrix_pd"], "cannot run on --env matrix_pd"),
])
def test_opponent_shaping_bad_input(argv, fragment, capsys, caplog):
    assert main_compiling_nothing(argv, caplog) == 2
    assert fragment in capsys.readouterr().err


def chunk_lengths(total, seconds_per_update, start=0, checkpoint_every=0):
    """The chunk lengths ``train.run`` uses from ``start`` on, updates timed at ``seconds_per_update``."""
    first = train._first_chunk(total - start, checkpoint_every)
    lengths, later, t = [], None, start
    while t < total:
        length = train._chunk_length(t, total, first, later)
        lengths.append(length)
        t += length
        if later is None:
            later = train._later_chunk(length, length * seconds_per_update, total - t, checkpoint_every)
    return lengths


@pytest.mark.parametrize("total,seconds_per_update,want", [
    (20, 1e-3, {1}),  # a short run: one compile
    (4000, 1e-3, {20}),  # chunks of 1/FIRST_CHUNKS of the run
    (4000, 1.0, {20, 10}),  # 20 s chunks: halved, every boundary still one of the first length's
    (4000, 100.0, {20, 1}),  # updates too slow for any chunk to be short enough: one at a time
    (100_003, 1e-4, {1, 501}),  # a prime: a multiple of the first length, the tail in chunks of the first length
])
def test_chunks_cover_the_run_with_at_most_two_lengths_and_progress_every_few_seconds(total, seconds_per_update, want):
    for start in (0, 3):
        lengths = chunk_lengths(total, seconds_per_update, start)
        assert sum(lengths) == total - start and len(set(lengths)) <= 2
        if start == 0:
            assert set(lengths) == want, set(lengths)
        slow = [n for n in lengths[1:] if n * seconds_per_update > train.PROGRESS_EVERY_S]
        assert not slow or set(slow) == {1}
    assert set(chunk_lengths(total, seconds_per_update, checkpoint_every=7)) <= {7, total % 7}  # end at checkpoints


def test_progress_lines_compiling_then_updates_and_none_when_quiet(tmp_path, capfd, monkeypatch):
    args = [arg for arg in SMALL if arg != "--quiet"]
    assert train.main([*args, "--out", str(tmp_path / "loud")]) == 0
    err = capfd.readouterr().err.splitlines()
    label = "lola_exact on ipd x3 seeds: "
    assert err[0] == label + "compiling initialisation and training step ..."
    assert err[1].startswith(label + "compiled in ")
    assert err[2].startswith(label + "update 1/20 (5%)") and err[-1].startswith(label + "update 20/20 (100%)")
    assert train.main([*SMALL, "--out", str(tmp_path / "quiet")]) == 0
    assert capfd.readouterr().err == ""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # a terminal: one line rewritten in place
    assert train.main([*args, "--out", str(tmp_path / "tty")]) == 0
    err = capfd.readouterr().err
    assert err.count("\n") == 3 and err.split("\n")[2].startswith("\r" + label + "update 1/20 (5%)"), err
    assert err.split("\r")[-1].startswith(label + "update 20/20 (100%)") and err.endswith("\n")
