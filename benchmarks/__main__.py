"""``make bench``: backtest speed, then the runner's overhead and the archive's size per day."""

from benchmarks import bench_backtest, bench_runner

if __name__ == "__main__":
    bench_backtest.main([])
    print()
    raise SystemExit(bench_runner.main(["--real-day"]))
