"""Submission files: check against the competition format, then write atomically.

Generated CSVs land in this folder by default (git-ignored).
"""
