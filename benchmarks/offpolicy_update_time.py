"""CPU seconds of one ``hatd3`` update (HARL's defaults on continuous spread: 1,000 environment steps, 50 gradient
steps; one seed, ``jit(update)`` called in a loop), before and after ``learning_starts``, for the code in TREE.

    python benchmarks/offpolicy_update_time.py TREE   # one JSON line; run it on two trees in alternation to compare
"""
import json
import os
import sys
import time

if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        sys.exit("usage: offpolicy_update_time.py TREE (a checkout of this repository)")
    tree = os.path.abspath(sys.argv[1])
    sys.path.insert(0, tree)
    import jax

    import envs
    from algos import offpolicy

    env = envs.make("mpe_spread", continuous=True)
    cfg = offpolicy.default_config(env, "hatd3")
    trainer = offpolicy.make_train(env, cfg)
    state = jax.jit(trainer.init)(jax.random.PRNGKey(0))
    update = jax.jit(trainer.update)
    update.lower(state, jax.random.PRNGKey(1)).compile()
    before, after = [], []
    for u in range(16):
        start = time.process_time()
        state, metrics = update(state, jax.random.PRNGKey(u))
        jax.block_until_ready(state)
        (after if int(metrics["learning"]) else before).append(time.process_time() - start)
    print(json.dumps(dict(tree=tree, steps_per_update=cfg.steps_per_update, num_sgd=cfg.num_sgd,
                          pre_learning_cpu_s=before, learning_cpu_s=after, load=os.getloadavg())))
