import sys

from bench.ab.runner import main

sys.exit(main())
