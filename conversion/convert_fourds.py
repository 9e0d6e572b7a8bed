#!/usr/bin/env python
"""Convert an original 4DS ``.npz`` checkpoint (thin wrapper around ``fourd-hub convert``).

Usage:
    python conversion/convert_fourds.py scaling4d_dist_b_depth.npz ./4ds-b-dist-e-scannet-depth
    python conversion/convert_fourds.py my_4ds_s.npz ./my-4ds-s --preset S --dtype bfloat16

All options of ``fourd-hub convert`` are accepted (``--help``). The conversion logic lives in the
installed package (``fourd_hub.conversion``), so ``fourd-hub convert`` works after ``pip install``.
"""

import sys

from fourd_hub.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
