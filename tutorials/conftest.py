"""nbval runs the tutorials in fast mode (fewer SVI steps, smaller data) unless PYROSSM_FAST is set.

The notebooks read ``PYROSSM_FAST`` (``"1"`` = fast); the kernel inherits this process's environment.
"""

import os

os.environ.setdefault("PYROSSM_FAST", "1")
