"""Pieces every layer shares: errors, registries, config, seed and device resolution."""
