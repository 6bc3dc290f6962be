"""The notebook machinery: run a job notebook, archive it, render it, index and review runs.

- :mod:`~allocator.notebook.jobspec` — the job registry: each job's notebook and schedule;
- :mod:`~allocator.notebook.runner` — plan, record, execute and finish one run (papermill);
- :mod:`~allocator.notebook.parameters` — ``-p`` values parsed and checked against a notebook;
- :mod:`~allocator.notebook.archive` — dated, never-overwritten artifact paths;
- :mod:`~allocator.notebook.archived` — what an archived notebook says about its run;
- :mod:`~allocator.notebook.render` — HTML and Markdown renderings, notebook stripping;
- :mod:`~allocator.notebook.index` — ``reports/index.html``, from the archive and ``job_runs``;
- :mod:`~allocator.notebook.review` — the runs of a date range, read back with scrapbook;
- :mod:`~allocator.notebook.crontab` — the production schedule as crontab text;
- :mod:`~allocator.notebook.page` — a report's title, header, style sheet and page;
- :mod:`~allocator.notebook.formats` — the one formatting layer: dollars, percentages, dates...;
- :mod:`~allocator.notebook.tables` — tables, summary cards and sentences (HTML and Markdown);
- :mod:`~allocator.notebook.outputs` — a notebook's set-up: no warning or log record in outputs;
- :mod:`~allocator.notebook.summaries` — the daily jobs' answer first (signal, execute, fetch);
- :mod:`~allocator.notebook.slippage_tables` — fills against the official open, and by month
  (execute and fetch);
- :mod:`~allocator.notebook.tearsheet` — a backtest as a tearsheet (backtest, study, walk-forward);
- :mod:`~allocator.notebook.tuning_report` — the tune report and ``tuning_YYYY-MM.md``/``.html``;
- :mod:`~allocator.notebook.review_report` — the review's counts, runs and failures;
- :mod:`~allocator.notebook.research_report` — the sweep, study and walk-forward blocks;
- :mod:`~allocator.notebook.plots` — legible full-width charts, stored as compact PNGs;
- :mod:`~allocator.notebook.performance_plots` — the tearsheet's charts;
- :mod:`~allocator.notebook.hygiene` — git's notebook filter, nbdime, what a run's checkout
  changed against HEAD.
"""
