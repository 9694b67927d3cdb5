"""The CLMR waveform augmentation chain, batched on the input's device, and the view modes built on it."""

from musicssl.trainer.augment.chain import AugmentationChain, Stage, build_stages
from musicssl.trainer.augment.config import AugmentConfig
from musicssl.trainer.augment.views import ViewMode, make_views, pair_gaps

__all__ = ["AugmentConfig", "AugmentationChain", "Stage", "ViewMode", "build_stages", "make_views", "pair_gaps"]
