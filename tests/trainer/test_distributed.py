"""Tests for trainer.distributed and the 1-vs-2-process equality of every pretext's optimiser step.

The 2-process checks spawn 2 gloo processes once (module fixture); each runs the gather checks and one DDP
step per pretext on its half of the batch, then saves its results for the tests to compare with a
single-process step on the whole batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from musicssl.trainer import distributed
from musicssl.trainer.distributed import (
    all_reduce_mean,
    all_reduce_sum,
    broadcast_from_rank_zero,
    convert_sync_batchnorm,
    gather,
    rank,
    world_size,
)
from musicssl.trainer.pretexts import PRETEXTS, Pretext
from tests.support.tiny_pretexts import synthetic_pairs, tiny_pretext

WORLD_SIZE = 2
BATCH = 8
LEARNING_RATE = 0.5
TOTAL_STEPS = 10
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    **{name: (name, {}) for name in PRETEXTS},
    "clustering_sinkhorn": ("clustering", {"teacher_normalization": "sinkhorn"}),  # its sums span both ranks
}
"""Each checked configuration: pretext name and tiny_pretext overrides."""


def one_step(pretext: Pretext, views: Tensor, student: nn.Module) -> dict[str, Any]:
    """One SGD step on ``views`` then the EMA / schedule update; returns the rank-mean loss and the state."""
    optimizer = torch.optim.SGD(pretext.student.parameters(), lr=LEARNING_RATE)
    out = pretext.compute_loss(views, student)
    out.loss.backward()
    optimizer.step()
    pretext.after_optimizer_step(0, TOTAL_STEPS)
    state = {key: value.detach().clone() for key, value in pretext.state_dict().items()}
    return {"loss": all_reduce_mean(out.loss.detach()), "state": state}


def full_batch() -> Tensor:
    return synthetic_pairs(BATCH, torch.Generator().manual_seed(7))


def gather_checks(this_rank: int) -> dict[str, Any]:
    """Forward and backward of gather, the reductions, the refusal of unequal batch sizes, each size checked once."""
    size_checks = []
    check_sizes = distributed._all_gather_sizes
    distributed._all_gather_sizes = lambda local: size_checks.append(local.shape[0]) or check_sizes(local)
    local = (torch.arange(3.0) + 10 * this_rank).requires_grad_()
    gathered = gather(local.unsqueeze(1)).squeeze(1)
    assert torch.equal(gather(local.detach().unsqueeze(1)).squeeze(1), gathered.detach())  # a size seen: no check
    weights = torch.arange(1.0, 7.0)
    (gathered * weights).sum().backward()  # the same loss on both ranks
    try:
        gather(torch.zeros(this_rank + 1, 2))
        unequal_error = ""
    except ValueError as error:
        unequal_error = str(error)
    distributed._all_gather_sizes = check_sizes
    return {
        "gathered": gathered.detach(),
        "grad": local.grad,
        "sum": all_reduce_sum(torch.tensor([this_rank + 1.0])),
        "mean": all_reduce_mean(torch.tensor([this_rank + 1.0])),
        "broadcast": broadcast_from_rank_zero(torch.tensor([this_rank + 1.0, -this_rank])),
        "world_size_and_rank": (world_size(), rank()),
        "unequal_error": unequal_error,
        "size_checks": size_checks,
    }


def _worker(this_rank: int, init_file: str, out_dir: str) -> None:
    """Body of each spawned process: join the gloo group, run every check, save the results."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=this_rank, world_size=WORLD_SIZE)
    try:
        results: dict[str, Any] = {"gather": gather_checks(this_rank), "pretexts": {}}
        half = BATCH // WORLD_SIZE
        local_views = full_batch()[this_rank * half : (this_rank + 1) * half]
        for variant, (name, overrides) in VARIANTS.items():
            pretext = tiny_pretext(name, **overrides)
            results["pretexts"][variant] = one_step(pretext, local_views, DistributedDataParallel(pretext.student))
        torch.save(results, Path(out_dir) / f"rank{this_rank}.pt")
        dist.barrier()  # neither rank tears its gloo threads down while the other still talks to them
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Results of both spawned ranks."""
    out_dir = tmp_path_factory.mktemp("two_ranks")
    mp.spawn(_worker, args=(str(out_dir / "init"), str(out_dir)), nprocs=WORLD_SIZE, join=True)
    return [torch.load(out_dir / f"rank{r}.pt", weights_only=False) for r in range(WORLD_SIZE)]


@pytest.mark.distributed
@pytest.mark.timeout(600)  # bounds a hang of the 2-process group
def test_gather_concatenates_in_rank_order_and_sums_gradients(two_ranks: list[dict[str, Any]]) -> None:
    weights = torch.arange(1.0, 7.0)
    for this_rank, results in enumerate(two_ranks):
        checks = results["gather"]
        assert torch.equal(checks["gathered"], torch.tensor([0.0, 1.0, 2.0, 10.0, 11.0, 12.0]))
        # the loss is the same on both ranks, so the summed gradient is twice the local one
        assert torch.equal(checks["grad"], 2 * weights[3 * this_rank : 3 * this_rank + 3])
        assert checks["sum"].item() == 3.0 and checks["mean"].item() == 1.5
        assert checks["broadcast"].tolist() == [1.0, 0.0]  # rank 0's values on both ranks
        assert checks["world_size_and_rank"] == (2, this_rank)
        assert "same batch size on every rank, got [1, 2]" in checks["unequal_error"]
        assert checks["size_checks"] == [3, this_rank + 1]  # once for size 3, once for the unequal sizes


@pytest.mark.distributed
@pytest.mark.timeout(600)  # bounds a hang of the 2-process group
@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_two_ranks_with_half_batches_step_like_one_rank(variant: str, two_ranks: list[dict[str, Any]]) -> None:
    name, overrides = VARIANTS[variant]
    reference_pretext = tiny_pretext(name, **overrides)
    initial = {key: value.clone() for key, value in reference_pretext.state_dict().items()}
    reference = one_step(reference_pretext, full_batch(), reference_pretext.student)
    for results in two_ranks:
        distributed = results["pretexts"][variant]
        torch.testing.assert_close(distributed["loss"], reference["loss"], rtol=1e-5, atol=1e-7)
        assert distributed["state"].keys() == reference["state"].keys()
        for key, value in reference["state"].items():  # student, EMA teacher, DINO center and temperature
            torch.testing.assert_close(distributed["state"][key], value, rtol=1e-5, atol=1e-7, msg=key)
    moved = max(float((reference["state"][k] - initial[k]).abs().max()) for k in initial)
    assert moved > 1e-2  # the step is large enough that a wrong gradient scale would break the equality


def test_without_a_process_group_everything_is_local() -> None:
    local = torch.randn(3, 2, requires_grad=True)
    assert gather(local) is local
    assert (world_size(), rank()) == (1, 0)
    torch.testing.assert_close(all_reduce_sum(local), local.detach())
    torch.testing.assert_close(all_reduce_mean(local), local.detach())
    assert broadcast_from_rank_zero(local) is local


def test_convert_sync_batchnorm_replaces_batch_norms_and_keeps_weights() -> None:
    model = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3))
    with torch.no_grad():
        model[1].weight.fill_(2.0)
    converted = convert_sync_batchnorm(model)
    assert isinstance(converted[1], nn.SyncBatchNorm)
    assert torch.equal(converted[1].weight, torch.full((3,), 2.0))
