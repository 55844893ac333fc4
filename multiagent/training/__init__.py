"""Orchestration: the main job (`run_main_job`) and its pipeline of phases,
prepare data -> pretrain -> symbols -> master -> joint -> evaluate -> report."""

from multiagent.training.main_job import MainJob, MainJobView, run_main_job

__all__ = ["MainJob", "MainJobView", "run_main_job"]
