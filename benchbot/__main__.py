"""`python -m benchbot`: the benchbot command."""
from benchbot.cli import main

main()
