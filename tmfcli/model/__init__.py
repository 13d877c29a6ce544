"""The mathematics: games, the setting, the mean-field flow, values, exploitability, policies."""
