"""``make bench``: the backtest's speed, the research kernel against it, the 2006-2024
walk-forward, a job's overhead through ``allocator run``, CLI start-up.

    python -m benchmarks            # the default set (a few minutes)
    python -m benchmarks --sweep    # also the 200-config sweep on Dask (about 5 minutes more)

Every figure is measured in this one run; ``benchmarks/results.md`` keeps one line per change.
"""

import argparse

from benchmarks import bench_backtest, bench_kernel, bench_runner, bench_walkforward

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", action="store_true", help="also run the sweep benchmark")
    args = parser.parse_args()
    bench_backtest.main([])
    print()
    kernel_differs = bench_kernel.main([])
    print()
    bench_walkforward.main([])
    print()
    if args.sweep:
        from benchmarks import bench_sweep

        bench_sweep.main([])
        print()
    raise SystemExit(bench_runner.main([]) or kernel_differs)
