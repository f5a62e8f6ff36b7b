"""Running jobs: single runs, staged workflows, comparisons, sweeps and LR-finder sweeps, all through one
entry point that yields :mod:`engine.events` to whoever consumes them (the CLI or the window).

* :mod:`~engine.jobs.runner`      ``run_job(JobRequest, control)``: THE way to run anything; decides the kind
* :mod:`~engine.jobs.runs`        ``RunSpec`` and ``train_run``: one trainable run and its record
* :mod:`~engine.jobs.executors`   where runs train: this process, a local process pool (``EXECUTORS``)
* :mod:`~engine.jobs.ray_executor`  ... or Ray: a local Ray or a cluster (``--cluster``), results as the pool's
* :mod:`~engine.jobs.compare`     a comparison's runs (variants x seeds) and its events
* :mod:`~engine.jobs.compare_report`  the one statistics rule, summary, table, curves
* :mod:`~engine.jobs.sweep`       a sweep's runs (trials x seeds, trained as variants) and its events
* :mod:`~engine.jobs.sweep_report`    a sweep's statistics, files, table and plot data
* :mod:`~engine.jobs.stages`      a staged workflow's phases, report and folder
* :mod:`~engine.jobs.console`     a job on a terminal: the one printer of every job's events
"""
