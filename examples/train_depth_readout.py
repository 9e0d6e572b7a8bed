#!/usr/bin/env python
"""Train a depth readout (paper A.2.5) on synthetic scenes with the Hugging Face Trainer.

    python examples/train_depth_readout.py                                   # tiny random 4DS, CPU, seconds
    python examples/train_depth_readout.py --model 4ds-b-dist-e --steps 40000 --batch-size 32 --lr 3e-4

Without --model the backbone is a tiny 4DS with RANDOM weights: the run shows the mechanics
(frozen backbone, the protocol's optimizer and schedule, metrics, saving), not what 4DS features
are worth. --model takes a catalog name (`fourd-hub list`), a directory or a Hub repo id; the
clips are then rendered at the backbone's frames and resolution, and the head is the paper's.

Prints AbsRel on held-out scenes before and after training, and the AbsRel of predicting the
training set's mean depth everywhere (the baseline to beat). Saves the trained model with
`save_pretrained` to --output-dir.
"""

from __future__ import annotations

from fourd_hub.training.readout import run_readout_example


def main(argv=None) -> None:
    run_readout_example("depth", __doc__.splitlines()[0], argv)


if __name__ == "__main__":
    main()
