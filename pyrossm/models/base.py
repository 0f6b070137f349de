"""What every model family is to the rest of pyrossm: :class:`GenerativeModel`, its training
:class:`Stage`\\ s and the capabilities a model may add (:class:`Forecasting`, :class:`Smoothing`).

``pyrossm.fit`` trains a model's stages in order; ``FitResult.sample`` works for every model;
``FitResult.forecast`` / ``log_score`` need :class:`Forecasting`, ``smooth`` /
``posterior_predictive`` need :class:`Smoothing`, and raise a ``TypeError`` naming the missing
capability otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyro.nn import PyroModule


def refuse_covariates(model_name: str, covariate_dim) -> None:
    """The check of a family that models no covariates: a ``ValueError`` naming ``model_name``
    unless ``covariate_dim`` is 0."""
    if covariate_dim:
        raise ValueError(f"{model_name} does not use covariates; got covariate_dim={covariate_dim}")


@dataclass(frozen=True)
class Stage:
    """One stage of training: an objective over some parameter groups for some steps.

    :param str name: the stage's name (the history's ``stage`` column).
    :param objective: an :class:`~pyrossm.inference.objectives.Objective`.
    :param groups: names of the parameter groups it trains (``None`` = all of them).
    :param num_steps: its step budget (``None`` = the trainer's ``num_steps``).
    """

    name: str
    objective: object
    groups: tuple | None = None
    num_steps: int | None = None


class GenerativeModel(PyroModule):
    """Base of every model family.

    A subclass sets ``obs_dim`` (``D``, target channels) and ``covariate_dim`` (``V``) and
    implements :meth:`parameter_groups`, :meth:`training_stages` and :meth:`generate`.  Its
    ``config`` is the JSON-able dict of constructor arguments that rebuilds it (set by the
    registered families; ``None`` for a model a user composed, which is then loaded into an
    instance the user passes).

    :ivar int min_length: the fewest time steps a series must have (e.g. a Markov order).
    """

    #: what data-side errors call :attr:`min_length`
    min_length_name = "min_length"

    def __init__(self):
        super().__init__()
        self.config = None

    @property
    def min_length(self) -> int:
        return 1

    def structure(self) -> dict:
        """The integer dimensions a saved fit and the model it is loaded into must share."""
        return {"obs_dim": int(self.obs_dim), "covariate_dim": int(self.covariate_dim)}

    def parameter_groups(self) -> dict:
        """``name -> list of parameters``, for per-group learning rates (default: one group)."""
        return {"all": list(self.parameters())}

    def training_stages(self, settings) -> list:
        """The :class:`Stage` list one ``fit`` trains, in order.

        :param settings: the trainer's :class:`~pyrossm.inference.config.ObjectiveSettings`
            (annealing, particles), for the objectives that read them.
        """
        raise NotImplementedError

    def generate(self, num_series: int, length: int, covariates=None):
        """Unconditional samples ``x`` ``(N, T, D)`` in the scaled units of the data contract.

        :param covariates: ``(..., N, T, V)`` or ``None`` (a model without covariates).
        """
        raise NotImplementedError


class Smoothing:
    """Capability: draws of the latent trajectories given data, and replicated data from them."""

    def sample_posterior(self, x, mask, covariates, num_samples):
        """``(S, N, T, M)`` latent draws given ``x`` ``(N, T, D)`` (zero-filled), ``mask``,
        ``covariates`` ``(N, T, V)``."""
        raise NotImplementedError

    def replicate(self, z, covariates):
        """Replicated data ``x ~ p(x | z)``: ``(S, N, T, D)`` from ``z`` ``(S, N, T, M)``."""
        raise NotImplementedError


class Forecasting:
    """Capability: predictive draws after a context, and the 1-step log score."""

    def predict(self, x, mask, covariates, future_covariates, horizon, num_samples):
        """``(S, N, horizon, D)`` draws of the ``horizon`` steps after the context ``x``."""
        raise NotImplementedError

    def one_step_log_score(self, x, mask, covariates, num_samples):
        """``(N,)`` Monte-Carlo ``log p(x_T | x_{1:T-1})`` in the units of ``x``."""
        raise NotImplementedError


CAPABILITIES = {"forecasting": Forecasting, "smoothing": Smoothing}


def capabilities(model) -> tuple:
    """The capability names ``model`` has, e.g. ``("forecasting", "smoothing")``."""
    return tuple(name for name, cls in CAPABILITIES.items() if isinstance(model, cls))


def require(model, capability: str, method: str) -> None:
    """Raises ``TypeError`` unless ``model`` has ``capability`` (``method`` names the call)."""
    if not isinstance(model, CAPABILITIES[capability]):
        raise TypeError(
            f"{method} needs a model with the {capability!r} capability; "
            f"{type(model).__name__} has {list(capabilities(model)) or 'none'} "
            f"(every model can sample())"
        )
