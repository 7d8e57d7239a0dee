"""Jobs: jobs.toml, the scheduler and daemon, unit files and the history of runs."""
