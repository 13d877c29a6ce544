"""``python -m tmfcli``: the tmf command line."""

from tmfcli.cli import main

if __name__ == "__main__":
    main()
