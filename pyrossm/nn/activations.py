"""The activation functions pyrossm's networks can use, by name."""

from __future__ import annotations

from torch import nn
from torch.nn import functional as F

#: name -> (function, module class).  ReLU is the default everywhere (the paper's); a ReLU unit
#: that is negative for every input passes no gradient and never recovers, and in some fitted
#: bimodal models whole layers of them died, which SiLU prevents (``docs/experiments/2026-11-30-dead-units.md``,
#: "Dead units").
ACTIVATIONS = {"silu": (F.silu, nn.SiLU), "relu": (F.relu, nn.ReLU)}


def check_activation(activation: str) -> str:
    """Returns ``activation`` if it is a known name; raises ``ValueError`` naming the choices."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return activation


def activation_function(activation: str):
    """The function of a known activation name, e.g. :func:`torch.nn.functional.silu`."""
    return ACTIVATIONS[check_activation(activation)][0]


def activation_module(activation: str) -> nn.Module:
    """A new module of a known activation name, e.g. :class:`torch.nn.SiLU`."""
    return ACTIVATIONS[check_activation(activation)][1]()
