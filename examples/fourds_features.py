#!/usr/bin/env python
"""Extract 4DS features from a clip.

    python examples/fourds_features.py                       # random 4DS-S weights, random clip
    python examples/fourds_features.py --model ./4ds-b-dist-e  # a converted checkpoint directory

Prints the shapes of the outputs and which block the readout features come from.
"""

import argparse

import torch

from fourd_hub import FourDSConfig, FourDSModel
from fourd_hub.models.fourds.modeling_fourds import readout_feature_index


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a converted checkpoint directory (default: random 4DS-S weights)")
    parser.add_argument("--size", default="S", help="4DS size for random weights (S, B, L, H, G, e, j)")
    args = parser.parse_args()

    if args.model:
        model = FourDSModel.from_pretrained(args.model)
    else:
        model = FourDSModel(FourDSConfig.from_preset(args.size))
    model.eval()
    config = model.config
    # A clip at the model's training size: (B, T, C, H, W), RGB in [0, 1].
    video = torch.rand(1, config.num_frames, 3, *config.image_size)
    with torch.no_grad():
        out = model(video, output_features=True)
    index = readout_feature_index(len(out.features), config.readout_depth)
    print(f"last_hidden_state: {tuple(out.last_hidden_state.shape)}")
    print(f"features: {len(out.features)} entries of {tuple(out.features[0].shape)}")
    print(f"readout_features: {tuple(out.readout_features.shape)} (features[{index}] = input of block {index - 1}, "
          f"resized to {config.num_frames} frames)")


if __name__ == "__main__":
    main()
