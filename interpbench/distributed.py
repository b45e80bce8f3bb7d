"""Distributed evaluation on torch.distributed: shard chunks across ranks, merge accumulators.

Under `torchrun --nproc_per_node=K -m interpbench evaluate ...` each rank extracts and
scores the cache chunks c with c % K == rank; the metric accumulators are then merged
with one all_gather_object (every accumulator has merge(); the merge order is rank order
on every rank, so all ranks hold the same merged state), and rank 0 writes the results.
Backend: nccl when the ranks use GPUs, gloo on CPU. Outside torchrun (WORLD_SIZE unset)
everything here is a no-op and a run is a single process.

The objects exchanged are our own accumulators, pickled between the ranks of one job
(torch.distributed's object collectives); nothing is read from files here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    """This process's share of the work: chunk c belongs to rank c % world."""

    rank: int = 0
    world: int = 1

    def owns(self, chunk: int) -> bool:
        return chunk % self.world == self.rank

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def current_shard() -> Shard:
    """The shard of this process: (rank, world size) of the process group, or (0, 1)."""
    if not _active():
        return Shard()
    return Shard(dist.get_rank(), dist.get_world_size())


def init_from_env(device: str = "auto") -> tuple[Shard, torch.device | None]:
    """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_*).

    Returns the shard and the device this rank must use (None outside torchrun: the
    caller resolves --device as usual). GPU ranks use cuda:LOCAL_RANK and nccl.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Shard(), None
    if not dist.is_initialized():
        use_cuda = device != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    dev = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    return current_shard(), dev


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()  # rank 0 may still be writing; nobody leaves before it is done
        dist.destroy_process_group()


def all_gather_objects(obj) -> list:
    """[obj of rank 0, obj of rank 1, ...] on every rank; [obj] in a single process."""
    if not _active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def merge_across_ranks(acc):
    """The accumulator merged over all ranks (in rank order), on every rank.

    `acc` is anything with merge(other): a metric accumulator or the whole MetricSuite.
    """
    parts = all_gather_objects(acc)
    if len(parts) == 1:
        return acc
    if not hasattr(acc, "merge"):
        raise TypeError(f"{type(acc).__name__} has no merge(); distributed evaluation needs mergeable accumulators")
    merged = parts[0]
    for other in parts[1:]:
        merged.merge(other)
    return merged


def gather_rows(rows: dict[int, torch.Tensor]) -> torch.Tensor:
    """Concatenate {start row: block} from every rank, by start row, into one full tensor."""
    blocks: dict[int, torch.Tensor] = {}
    for part in all_gather_objects(rows):
        blocks.update(part)
    return torch.cat([blocks[s] for s in sorted(blocks)])
