import sys

from analysis.readme.docs import main

sys.exit(main())
