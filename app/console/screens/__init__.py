"""The console's screens: overview, details, dialogs, help and the end of the game."""
