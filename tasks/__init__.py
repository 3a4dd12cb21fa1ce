"""The competitions: one file each (tasks/<name>.py) declaring everything particular to it, and
the spec they fill in: `Task` for tables (tasks/task.py), `ImageTask` for images
(tasks/image_task.py), their common base `TaskBase` and the `TASKS` registry.

A task's methods are where tables and images differ (reading the data, encoding a fold, the views
a prediction averages); the stages in pipelines/ call them and branch on nothing. Tasks sit below
pipelines/ in the layering: they use core, data, features, models and submissions, and pipelines/
imports them (pipelines/__init__.py loads every task file on first use of TASKS).
"""
