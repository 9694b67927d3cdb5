"""16-bit PCM, the form data_prep hands its audio on in: conversion from float and a content hash.

Defined here, left of `sharding` in the data flow, so data_prep needs no shard code; every stage imports them
from here.
"""

from __future__ import annotations

import hashlib

import numpy as np

PCM_SCALE = 32768.0
PCM_SHA1_KEY = "pcm_sha1"  # metadata key of a track's PCM sha1; manifests may not use it, verify checks it


def float_to_pcm(wave: np.ndarray) -> np.ndarray:
    """Float audio in [-1, 1] to int16 PCM, clipped."""
    return np.clip(np.round(wave * PCM_SCALE), -32768, 32767).astype(np.int16)


def pcm_to_float(pcm: np.ndarray) -> np.ndarray:
    """Int16 PCM to float32 in [-1, 1)."""
    return pcm.astype(np.float32) / PCM_SCALE


def pcm_sha1(pcm: np.ndarray) -> str:
    """Hex sha1 of int16 PCM as stored, identifying a track's audio content."""
    return hashlib.sha1(pcm.astype("<i2", copy=False).tobytes()).hexdigest()
