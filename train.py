"""Pre-train a backbone: `accelerate launch train.py --pretext contrastive --data shards/` (or python)."""

import sys

from trainer.cli import main

if __name__ == "__main__":
    sys.exit(main())
