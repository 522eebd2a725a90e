"""Learners' optimisers: global-norm clipping, then the learner's rule, on the parameters flattened to one vector.

    clipped(opt, c) = flatten(chain(clip_by_global_norm(c), opt))     (no clipping when c <= 0)

``optax.flatten`` concatenates the gradients of every parameter array into one vector [P] before the chain and
splits the updates back into the parameters' shapes after it, so each step of the chain (the norm, the moment
estimates, the step) is one operation on [P] instead of one per array: a network of L layers has 2L or more arrays,
and XLA compiles and launches a kernel for each. The updates are the chain's own; the clip's norm sums its squares in
another order than array by array, and elementwise kernels over other lengths may round their last bit otherwise,
so results agree with the unflattened chain to float rounding. The optimiser state holds flat [P] moments.
"""
from __future__ import annotations

import optax


def clipped(opt: optax.GradientTransformation, max_grad_norm: float) -> optax.GradientTransformation:
    """``opt`` after global-norm clipping at ``max_grad_norm`` (none when it is <= 0), on flattened parameters."""
    clip = [optax.clip_by_global_norm(max_grad_norm)] if max_grad_norm > 0 else []
    return optax.flatten(optax.chain(*clip, opt))
