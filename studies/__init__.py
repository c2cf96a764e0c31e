"""Studies: hosting capacity, time series and batch what-ifs on warm engines, as jobs with progress.

studies → plans (split a study into tasks) → executors (where tasks run) → tasks (run on a warm engine).
"""
