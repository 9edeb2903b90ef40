import sys

from todobox_deploy.cli import main

sys.exit(main())
