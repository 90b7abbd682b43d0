"""Run a command, pass its output through, then print `peak_rss_kb N`: the command's own
peak resident memory as the kernel counted it (what GNU time's %M says)."""

import os
import subprocess
import sys

child = subprocess.Popen(sys.argv[1:])
_, status, usage = os.wait4(child.pid, 0)
print(f"peak_rss_kb {usage.ru_maxrss}", flush=True)
sys.exit(os.waitstatus_to_exitcode(status))
