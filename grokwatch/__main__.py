import sys

from grokwatch.cli import main

sys.exit(main())
