"""Staged pipelines. Importing the package registers every task file."""
from pipelines.task import TASKS, Task  # noqa: F401
from pipelines import cifar10, diabetes, mnist, otto, titanic  # noqa: F401
