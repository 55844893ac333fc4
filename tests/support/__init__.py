"""Helpers the tests import: plain modules, not conftests (a conftest holds fixtures and hooks
only; pytest imports every conftest of a run under the same name, so importing one by name gets
whichever was collected last).

Imported as ``support.<module>``: pytest's default ("prepend") import mode puts ``tests/`` on
``sys.path`` when it loads ``tests/conftest.py`` (``tests/`` has no ``__init__.py``), which it
does for any run under ``tests/``, a single file included; ``mlflow_server`` and the per-folder
helpers (``hierarchy_configs``, ``curriculum_helpers``) are found the same way.
"""
