import sys

from vidcls.cli import main

sys.exit(main())
