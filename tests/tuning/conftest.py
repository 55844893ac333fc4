"""Fixtures for the sweep tests: the real MLflow server (the local Ray of the session is the
root conftest's ``ray_session``)."""

from mlflow_server import mlflow_server  # noqa: F401  (the shared session fixture)
