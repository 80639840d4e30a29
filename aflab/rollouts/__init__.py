"""Rollouts: sampling completions from an organism and writing them as transcript records."""
