"""Run by tests/test_loop_contract.py in a child process: train a recipe with its loop, and with ``--kill-at-step N``
SIGKILL this process when the evaluation at step N is reported, i.e. after every earlier checkpoint was written and
before checkpoint-N is, as a power cut or the OOM killer would: no exception, no clean-up, nothing flushed.

python tests/loop_worker.py [--kill-at-step N] [--scaler-growth-interval K] RECIPE KEY=VALUE ...

``--scaler-growth-interval K``: fp16's GradScaler doubles its scale every K steps without overflow (torch's default
is 2000), so that a short run's scaler state changes and a resume that lost it would show.
"""

import argparse
import os
import signal

import torch

from mrpc_finetune.recipe import load_recipe
from mrpc_finetune.train import train_with_loop

parser = argparse.ArgumentParser()
parser.add_argument("--kill-at-step", type=int, default=None)
parser.add_argument("--scaler-growth-interval", type=int, default=None)
parser.add_argument("recipe")
parser.add_argument("overrides", nargs="*")
args = parser.parse_args()

if args.scaler_growth_interval:
    original_init = torch.amp.GradScaler.__init__

    def scaler_init(self, *positional, **kwargs):
        original_init(self, *positional, **{**kwargs, "growth_interval": args.scaler_growth_interval})

    torch.amp.GradScaler.__init__ = scaler_init

torch.use_deterministic_algorithms(True)  # the resumed run must retrace the unbroken one exactly, on CUDA too


def kill_at(metrics, step):
    if step == args.kill_at_step:
        os.kill(os.getpid(), signal.SIGKILL)


train_with_loop(load_recipe(args.recipe, args.overrides), on_evaluate=kill_at)
