"""RL under mitigations: TRL's GRPOTrainer with aflab's reward terms, rollouts and metrics."""
