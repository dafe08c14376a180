"""Process-group handling shared by the benchmark scripts."""
import contextlib
import os
import signal
import subprocess


def stop_process_group(process, timeout=30):
    """SIGTERM the group a server was started in (start_new_session=True), SIGKILL if it
    does not go in time; nothing to do when it has already exited."""
    if process is None or process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
