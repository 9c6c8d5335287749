"""grippers."""
