"""Evaluation: behaviour and reasoning metrics of transcripts, with honest intervals."""
