"""Ingest: find a competition's files, read them, validate their schema.

The folders beside this file hold the bundled copies (Titanic, the course's diabetes
file); Otto, MNIST and CIFAR-10 come through --data-dir or the Kaggle API.
"""
