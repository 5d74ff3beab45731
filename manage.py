#!/usr/bin/env python
"""Django's command-line utility for Custodian."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "site_config.settings")
    from django.core.management import execute_from_command_line

    from site_config.startup import load_settings_or_exit

    # A configuration error (e.g. DEBUG off and no SECRET_KEY) is one line, not a traceback.
    load_settings_or_exit()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
