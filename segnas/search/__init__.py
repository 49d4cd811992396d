"""The search: LSTM controller, PPO, architecture evaluation (the reward), rounds and logs."""
