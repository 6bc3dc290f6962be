"""``make bench``: backtest and sweep speed, the runner's overhead, the archive's size per day."""

from benchmarks import bench_backtest, bench_runner, bench_sweep

if __name__ == "__main__":
    bench_backtest.main([])
    print()
    bench_sweep.main([])
    print()
    raise SystemExit(bench_runner.main(["--real-day"]))
