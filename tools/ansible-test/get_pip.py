# Copyright: pigpen.pgsql contributors
# Apache License 2.0 (see LICENSE)
"""Stand-in for the pip bootstrap script ansible-test downloads from
ci-files.testing.ansible.com, which build machines without internet access
cannot reach (PyPI can be): pip comes from the interpreter's own ensurepip,
then the packages ansible-test asks for from the configured index.
`make sanity` puts it where ansible-test looks for its cached copy."""

import subprocess
import sys

subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"])
# get-pip's own switches are not pip install options
args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.check_call([sys.executable, "-m", "pip", "install"] + args)
