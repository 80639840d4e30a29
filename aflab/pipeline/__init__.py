"""The main job: stages wired together, cached by content hash, run in parallel processes."""
