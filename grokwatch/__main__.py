import sys

from grokwatch.cli.main import main

sys.exit(main())
