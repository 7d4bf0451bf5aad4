"""Allow `python -m guided_audio`."""

from guided_audio.cli import main

main()
