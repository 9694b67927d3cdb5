"""Session-wide settings that make the suite's numbers the same on every run of one machine.

The thread count is fixed (the same on a laptop, a 2-core CI runner or a 64-core node), for this process and,
through the environment, for every subprocess a test starts: float reductions then run in the same order each
time, whatever the machine's core count or load.
"""

from __future__ import annotations

import os

TEST_THREADS = 2
for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[variable] = str(TEST_THREADS)

import torch  # noqa: E402  (after the environment, so that its thread pools read it)

torch.set_num_threads(TEST_THREADS)
