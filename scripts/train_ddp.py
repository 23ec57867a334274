"""Train chapter 9's ResNet on Fashion-MNIST with DistributedDataParallel, one process per device.

    torchrun --standalone --nproc_per_node=2 scripts/train_ddp.py --epochs 1 --train-size 512

Each process (rank) reads its place from torchrun's environment: RANK, WORLD_SIZE and
LOCAL_RANK (the process's index on its machine). On CUDA GPUs rank r uses GPU LOCAL_RANK
(``torch.cuda.set_device``) with the nccl backend, and batch norm is converted to
``SyncBatchNorm``, so its statistics are taken over the global batch. On CPUs the gloo backend
is used and batch norm keeps per-rank statistics (``SyncBatchNorm`` needs GPUs): each rank
normalizes its own B/K rows, so training is not exactly the single-process run. The weights
stay identical on all ranks all the same, because DDP averages the gradients, so every rank
takes the same step. (The running statistics are broadcast from rank 0 before each forward
pass and then updated by each rank from its own rows, so they differ by the last batch.)

The data: every rank loads the same stratified subset (``--train-size``) and the same
shuffled global batches (same seed, ``drop_last``, a global batch divisible by the number of
ranks); rank r takes rows r, r + K, r + 2K, ... of each, so all shards have one size. At the
end every rank prints a digest of its weights, and rank 0 evaluates on the 10,000 test images
and prints one final line with the accuracy. Run it with plain ``python`` for one process.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time

import torch

from helpers import data, distributed, models, training

WIDTHS = (8, 16, 32)  # chapter 9's ResNet-8


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--train-size", type=int, default=None,
                        help="stratified training subset (default: all 54,000 after val)")
    parser.add_argument("--batch-size", type=int, default=128, help="global batch size")
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")
    return args


def weights_digest(model: torch.nn.Module) -> str:
    """The first 16 hex digits of the SHA-256 of every parameter's raw bytes, in order."""
    h = hashlib.sha256()
    for tensor in model.parameters():
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def main(argv=None) -> None:
    args = parse_args(argv)
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if torch.cuda.is_available():
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    rank, world = distributed.init()  # nccl on GPUs, gloo on CPUs; (0, 1) without torchrun
    if args.batch_size % world:
        raise SystemExit(f"--batch-size {args.batch_size} must be divisible by the "
                         f"{world} ranks, so that every shard has the same size")

    splits = data.load_fashion_mnist(train_size=args.train_size, seed=args.seed)
    torch.manual_seed(args.seed)  # the same initial weights on every rank
    net = models.resnet(8, WIDTHS)
    if device.type == "cuda":
        net = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
    model = distributed.wrap(net, device)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    batches = data.DeviceLoader(splits.train.x, splits.train.y, args.batch_size, shuffle=True,
                                seed=args.seed, device=device, drop_last=True)
    train = distributed.ShardedLoader(batches, rank, world)
    start = time.perf_counter()
    training.fit(model, train, None, optimizer, args.epochs, progress=False)
    seconds = time.perf_counter() - start
    print(f"rank {rank}: weights digest {weights_digest(net)}", flush=True)
    if rank == 0:
        test = data.DeviceLoader(splits.test.x, splits.test.y, 1000, device=device)
        accuracy = training.evaluate(net, test).accuracy
        print(f"ranks {world}, device {device.type}, train images {len(splits.train.y)}, "
              f"epochs {args.epochs}, {seconds:.1f} s: test accuracy {accuracy:.4f}", flush=True)
    distributed.shutdown()


if __name__ == "__main__":
    main()
