"""Objectives: what a training stage minimises.

An objective maps a minibatch and the step within its stage to a differentiable loss per series
and its named terms (floats, per series, for the history); :meth:`Objective.validate` gives the
values a validation records (higher is better, e.g. the ELBO).  The trainer knows nothing else
of a model: a family with another loss writes another objective.
"""

from __future__ import annotations

import torch
from pyro import poutine
from pyro.distributions.util import scale_and_mask

from .elbo import elbo_terms
from .schedules import AnnealingSchedule


class Objective:
    """The protocol of a training objective.

    Subclasses implement :meth:`loss` and, to be validated, :meth:`validate`.  A ``batch`` is
    whatever the fit hands the stage, e.g. a :class:`~pyrossm.data.SeriesData` of ``N`` series
    (``len(batch) == N``).
    """

    #: the names :meth:`validate` returns (what ``validation_metric`` may name)
    validation_names: tuple = ()

    def for_stage(self, num_steps: int) -> Objective:
        """The objective for a stage of ``num_steps`` (e.g. with schedules resolved)."""
        return self

    def loss(self, batch, step: int) -> tuple[torch.Tensor, dict]:
        """The loss of a minibatch at ``step`` of the stage.

        :returns: ``(loss, terms)``: the scalar loss per series (to minimise) and a dict of
            named floats for the history (per series where they are sums over series).
        """
        raise NotImplementedError

    def validate(self, batch) -> dict:
        """Values on validation data, higher is better, e.g. ``{"elbo": ...}`` (recorded as
        ``val_elbo``).  The default records nothing."""
        return {}


class AnnealedELBO(Objective):
    r"""The negative ELBO of a Pyro model/guide pair per series, with the rate sites scaled by
    ``lambda(step)`` (DDSSM paper, Appendix I.2; the programs apply ``poutine.scale`` to their
    rate sites with the ``annealing`` argument).

    ``loss = -(1/N) [E_q log p(x|z) + lambda (E_q log p(z) - E_q log q(z))]`` over ``S``
    vectorised particles.  Terms: ``elbo`` (the unscaled bound per series), ``annealing``
    (lambda) and ``elbo_<site>`` (each site's scaled contribution per series).

    :param model: Pyro program ``model(x, mask, covariates, annealing)``.
    :param guide: Pyro program with the same signature.
    :param AnnealingSchedule annealing: ``lambda(step)``.
    :param int num_particles: ``S``.
    """

    validation_names = ("elbo",)

    def __init__(self, model, guide, annealing: AnnealingSchedule | None = None, num_particles: int = 1):
        self.model, self.guide = model, guide
        self.annealing = annealing if annealing is not None else AnnealingSchedule(kind="constant")
        self.num_particles = num_particles

    def for_stage(self, num_steps):
        return AnnealedELBO(self.model, self.guide, self.annealing.for_stage(num_steps), self.num_particles)

    @staticmethod
    def _args(batch):
        """The programs' ``(x, mask, covariates)`` from a :class:`~pyrossm.data.SeriesData`
        (or such a tuple)."""
        return tuple(batch) if isinstance(batch, tuple) else (batch.filled_values, batch.mask, batch.covariates)

    def loss(self, batch, step):
        lam = self.annealing(step)
        args = self._args(batch)
        n = args[0].shape[0]
        loss, terms = elbo_terms(self.model, self.guide, *args, annealing=lam, num_particles=self.num_particles)
        out = {"elbo": terms.pop("elbo_unscaled") / n, "annealing": lam}
        out.update({f"elbo_{site}": value / n for site, value in terms.items()})
        return loss / n, out

    def validate(self, batch):
        args = self._args(batch)
        with torch.no_grad():
            _, terms = elbo_terms(self.model, self.guide, *args, annealing=1.0, num_particles=self.num_particles)
        return {"elbo": terms["elbo_unscaled"] / args[0].shape[0]}


class ObservedSites(Objective):
    r"""The negative sum of a Pyro model's observed and ``factor`` sites per series, the latent
    sites' values drawn by the guide (or by the model itself when ``guide`` is ``None``).

    ``loss = -(1/N) sum_{observed sites s} scale_s log p_s(value_s | latents)``: the latent
    sites' own densities do not count.  This is the objective of programs that are not an
    ELBO, e.g. the collapse-simulation framework (Li & van der Schaar, 2024, Eq. 14-15: the guide
    draws ``z`` from the forward diffusion, the model scores ``X`` under it with per-series
    weights and adds the collapse penalty as a ``factor``), or a diffusion prior fitted to fixed
    latents (an observed site).  Terms: ``objective`` (the negative loss per series) and
    ``site_<name>`` per observed site.

    :param model: Pyro program ``model(x, mask, covariates)``.
    :param guide: Pyro program with the same signature, or ``None``.
    """

    validation_names = ("objective",)

    def __init__(self, model, guide=None):
        self.model, self.guide = model, guide

    def _terms(self, batch):
        args = AnnealedELBO._args(batch)
        model = self.model
        if self.guide is not None:
            guide_trace = poutine.trace(self.guide).get_trace(*args)
            model = poutine.replay(model, trace=guide_trace)
        model_trace = poutine.trace(model).get_trace(*args)
        total, terms = 0.0, {}
        for name, site in model_trace.nodes.items():
            if site["type"] != "sample" or not site["is_observed"]:
                continue
            value = scale_and_mask(site["fn"].log_prob(site["value"]), site["scale"], site["mask"]).sum()
            total = total + value
            terms[f"site_{name}"] = float(value.detach())
        return total, terms, args[0].shape[0]

    def loss(self, batch, step):
        total, terms, n = self._terms(batch)
        out = {"objective": float(total.detach()) / n}
        out.update({name: value / n for name, value in terms.items()})
        return -total / n, out

    def validate(self, batch):
        with torch.no_grad():
            total, _, n = self._terms(batch)
        return {"objective": float(total) / n}
