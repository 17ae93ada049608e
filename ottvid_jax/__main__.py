import sys

from ottvid_jax.cli import main

sys.exit(main())
