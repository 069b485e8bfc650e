"""Allow ``python -m healthmesh``."""

from healthmesh.cli import main

main()
