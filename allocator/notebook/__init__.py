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
- :mod:`~allocator.notebook.formats` — percentages, ratios and dollars as reports show them;
- :mod:`~allocator.notebook.plots` — the compact charts the notebooks draw;
- :mod:`~allocator.notebook.hygiene` — git's notebook filter, nbdime, what a run's checkout
  changed against HEAD.
"""
