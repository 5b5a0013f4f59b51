"""``python -m launcher.cli``: what the supervisor and the tests start as a stage's process."""

from launcher.cli import main

main()
