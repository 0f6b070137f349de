"""Named trainer settings: ``pyrossm.fit(..., trainer="ddssm-table3")``.

A preset is a flat :class:`~pyrossm.inference.config.TrainerConfig` dict.  The library ships the
DDSSM paper's tuned Table 3 settings; :func:`register_trainer_preset` adds others.  Without a
preset (or a ``TrainerConfig``), ``fit`` trains with the model family's defaults
(:mod:`pyrossm.models.registry`).  Given ``num_steps`` other than its own, ``fit`` stretches every
setting that names a step (:meth:`~pyrossm.inference.config.TrainerConfig.stretched`), so a short
run passes through the same phases.  Presets hold training settings only; the architecture is the
model's options.
"""

from __future__ import annotations

import copy

# -- the DDSSM paper's Table 3 (tuned on the bimodal random walk; the "DSSD" column is the DDSSM)
TABLE3_DDSSM = dict(
    num_steps=3000,
    batch_size=128,
    num_particles=2,
    annealing={"kind": "cosine", "start": 0.01, "end": 1.243, "warmup_steps": 889},
    learning_rates=dict(encoder=0.000864, emission=0.000300, transition=0.00941, init=0.000801),
)
TABLE3_DKF = dict(
    num_steps=3000,
    batch_size=512,
    num_particles=2,
    annealing={"kind": "cosine", "start": 0.01, "end": 1.245, "warmup_steps": 867},
    learning_rates=dict(encoder=0.00887, emission=0.00777, transition=0.000099, init=0.005),
)

#: preset name -> flat trainer settings
TRAINER_PRESETS = {
    "ddssm-table3": TABLE3_DDSSM,
    "dkf-table3": TABLE3_DKF,
}


def register_trainer_preset(name: str, settings: dict) -> None:
    """Adds (or replaces) a preset; ``settings`` are checked by building a ``TrainerConfig``."""
    from .config import TrainerConfig

    if not isinstance(name, str) or not name:
        raise TypeError(f"preset name must be a non-empty str, got {name!r}")
    TrainerConfig.from_dict(settings)
    TRAINER_PRESETS[name] = copy.deepcopy(settings)
