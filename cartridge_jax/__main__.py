"""`python -m cartridge_jax <command>`: see `cartridge_jax.cli`."""

import sys

from cartridge_jax.cli import main

sys.exit(main())
