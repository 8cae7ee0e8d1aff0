"""Per-step times of the streaming accumulators on one chunk (the profile behind BENCHMARKS.md §2, §7).

    python benchmarks/profile_streaming.py --device cuda     # or cpu

One heavy-tailed float32 chunk [--tokens, --neurons] on the device; each step of
``streaming.chunk_moments`` / ``streaming.hist_update`` is repeated ``--repeat`` times between device
synchronisations and reported in ms and in values per second. Prints no ratio: it explains one.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import base_parser, describe_device, heavy_tailed, machine, sync  # noqa: E402

import torch  # noqa: E402

from negdiff import streaming as St  # noqa: E402


def main(argv=None) -> None:
    p = base_parser(__doc__, repeat=10, threads=True)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tokens", type=int, default=8192)
    p.add_argument("--neurons", type=int, default=2048)
    p.add_argument("--bins", type=int, default=4096)
    args = p.parse_args(argv)
    if args.quick:
        args.tokens, args.neurons, args.repeat = 512, 64, 1
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"machine: {machine()}; {describe_device(dev)}; chunk {args.tokens} x {args.neurons}, {args.bins} bins")
    x = torch.from_numpy(heavy_tailed(args.tokens, args.neurons)).to(dev)
    grid = St.Grid(args.bins, 8.0)
    mom = St.chunk_moments(x)
    mean, std = mom.mean, mom.std
    h = St.hist_init(args.neurons, grid, dev, dtype=torch.int32)
    n = x.numel()
    stride = args.bins + 2
    base = torch.arange(args.neurons, dtype=torch.float64, device=dev) * stride
    idx = torch.randint(0, args.neurons * stride, (n,), device=dev)
    idx_real = None

    def q_steps():
        nonlocal idx_real
        q = St.float64_copy(x)
        q.mul_(std).add_(mean)
        q.clamp_(min=base, max=base + args.bins + 1)
        i = torch.empty(q.shape, dtype=torch.int64, device=dev)
        i.copy_(q)
        idx_real = i.view(-1)

    ones = torch.ones(1, dtype=torch.int32, device=dev).expand(n)
    steps = {
        "chunk_moments (whole)": lambda: St.chunk_moments(x),
        "hist_update (whole)": lambda: St.hist_update(h, x, mean, std),
        "  float64 copy": lambda: St.float64_copy(x),
        "  affine + clamp + int64 (no count)": q_steps,
        "  index_add_ int32, uniform random slots": lambda: h.slots.view(-1).index_add_(0, idx, ones),
        "  index_add_ int32, the real slots": lambda: h.slots.view(-1).index_add_(0, idx_real, ones),
        "  bincount, the real slots": lambda: torch.bincount(idx_real, minlength=h.slots.numel()),
        "  amin + amax + count_nonzero(x < 0)": lambda: (x.amin(0), x.amax(0), torch.count_nonzero(x < 0, dim=0)),
    }
    q_steps()
    for name, fn in steps.items():
        fn()
        sync(dev)
        t0 = time.perf_counter()
        for _ in range(args.repeat):
            fn()
        sync(dev)
        ms = (time.perf_counter() - t0) / args.repeat * 1e3
        print(f"{name:45s} {ms:9.3f} ms  {n / ms / 1e6:8.2f} G values/s")


if __name__ == "__main__":
    main()
