"""The operator console: a local web page served by a run (`benchbot run --console`) that shows
the instruction, the planned grasp before motion, Table II, and takes the operator's answers
alongside the terminal (the first answer wins)."""
