"""`python -m benchbot.cli`: the benchbot command."""
from benchbot.cli import main

main()
