import sys

from smabm.cli import main

sys.exit(main())
