"""Optimizers and learning-rate schedules (registered under ``optimizers`` and ``schedulers``)."""
