"""The ELBO of a model/guide pair, split into its per-site terms.

This computes exactly what :class:`pyro.infer.Trace_ELBO` computes with
``vectorize_particles=True`` for fully reparameterised guides -- the guide is traced inside a
particle plate, the model replayed against it, and ``log p - log q`` summed per site -- but it
also returns each site's contribution, so training histories can show reconstruction and rate
terms separately.  ``tests/inference`` checks the equality with ``Trace_ELBO``.
"""

from __future__ import annotations

import pyro
from pyro import poutine
from pyro.poutine.util import prune_subsample_sites


def _vectorized(fn, num_particles, max_plate_nesting):
    def wrapped(*args, **kwargs):
        with pyro.plate("num_particles_vectorized", num_particles, dim=-(max_plate_nesting + 1)):
            return fn(*args, **kwargs)

    return wrapped


def elbo_terms(model, guide, *args, num_particles=1, max_plate_nesting=1, **kwargs):
    """Monte-Carlo ELBO terms, averaged over ``num_particles`` vectorised particles.

    :returns: ``(loss, terms)``: ``loss`` is the differentiable negative ELBO (a scalar, with any
        ``poutine.scale`` annealing applied); ``terms`` maps ``"<site>"`` to that site's
        (scaled) contribution to the ELBO as a detached float, and ``"elbo_unscaled"`` to the ELBO
        with every scale removed (the true bound, for reporting).
    :raises NotImplementedError: if a guide site is not reparameterised.
    """
    vguide = _vectorized(guide, num_particles, max_plate_nesting)
    vmodel = _vectorized(model, num_particles, max_plate_nesting)
    guide_trace = poutine.trace(vguide).get_trace(*args, **kwargs)
    model_trace = poutine.trace(poutine.replay(vmodel, trace=guide_trace)).get_trace(*args, **kwargs)
    guide_trace = prune_subsample_sites(guide_trace)
    model_trace = prune_subsample_sites(model_trace)
    model_trace.compute_log_prob()
    guide_trace.compute_log_prob()
    elbo, unscaled, terms = 0.0, 0.0, {}
    for name, site in model_trace.nodes.items():
        if site["type"] != "sample":
            continue
        value = site["log_prob_sum"]
        raw = site["unscaled_log_prob"].sum()
        if not site["is_observed"]:
            guide_site = guide_trace.nodes[name]
            if not guide_site["fn"].has_rsample:
                raise NotImplementedError(f"guide site {name!r} is not reparameterised")
            value = value - guide_site["log_prob_sum"]
            raw = raw - guide_site["unscaled_log_prob"].sum()
        elbo = elbo + value
        unscaled = unscaled + raw.detach()
        terms[name] = float(value.detach()) / num_particles
    terms["elbo_unscaled"] = float(unscaled) / num_particles
    return -elbo / num_particles, terms
