"""Run by tests/inference/test_distributed.py, alone or under torchrun: fits a deterministic toy
model (a linear autoencoder of the windows, MSE: no random draws) and a tiny DKF with
``pyrossm.fit``, and saves each rank's parameters and the fits' records to ``sys.argv[1]``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
import xarray as xr
from torch import nn

import pyrossm
from pyrossm.inference import Objective
from pyrossm.inference.distributed import world
from pyrossm.models import GenerativeModel, Stage

torch.set_num_threads(1)


class MSE(Objective):
    def __init__(self, net):
        self.net = net

    def loss(self, batch, step):
        x = batch.filled_values.flatten(1)
        error = (self.net.linear(x) - x).square().mean()
        return error, {"mse": float(error.detach())}


class LinearAutoencoder(GenerativeModel):
    def __init__(self, length=8):
        super().__init__()
        self.obs_dim, self.covariate_dim = 1, 0
        self.linear = nn.Linear(length, length)

    def parameter_groups(self):
        return {"all": list(self.parameters())}

    def training_stages(self, settings):
        return [Stage("mse", MSE(self))]

    def generate(self, num_series, length, covariates=None):
        return torch.zeros(1, num_series, length, 1)


def main(out):
    out = Path(out)
    rng = np.random.default_rng(0)
    data = xr.Dataset(
        {"x": (("series", "time"), rng.normal(size=(16, 8)).cumsum(1))},
        coords={"series": np.arange(16), "time": np.arange(8)},
    )
    rank, size = world()
    torch.manual_seed(rank)  # different initial parameters on each rank: DDP starts all from rank 0's
    toy = pyrossm.fit(LinearAutoencoder(), data, num_steps=12, batch_size=8, learning_rate=0.05, seed=0, progress=False)
    dkf = pyrossm.fit(
        "dkf",
        data,
        num_steps=3,
        batch_size=8,
        seed=0,
        progress=False,
        channels=4,
        hidden_dim=4,
        encoder_layers=1,
        emission_layers=1,
        transition_layers=1,
    )
    rank, size = world()
    torch.save({"toy": toy.model.state_dict(), "dkf": dkf.model.state_dict()}, out / f"rank{rank}.pt")
    if rank == 0:
        record = {
            "world_size": [toy.world_size, dkf.world_size],
            "toy_loss": toy.history["loss"].tolist(),
            "dkf_loss": dkf.history["loss"].tolist(),
        }
        (out / "record.json").write_text(json.dumps(record))


if __name__ == "__main__":
    main(sys.argv[1])
