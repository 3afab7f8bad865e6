"""Starting and stopping `faceledger serve` as a user would."""
import os
import signal
import subprocess
import threading


class Server:
    """A running `faceledger serve`; `url` is known once it printed its `listening on` line."""

    def __init__(self, binary, *args, env=None, timeout=120):
        self.process = subprocess.Popen(
            [binary, "serve", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(env or {})})
        self.stderr_lines = []
        self._stderr_reader = threading.Thread(target=self._drain_stderr, daemon=True)
        self._stderr_reader.start()
        self.url = self._await_listening(timeout)

    def _drain_stderr(self):
        for line in self.process.stderr:
            self.stderr_lines.append(line)

    def _await_listening(self, timeout):
        found = {}

        def read():
            for line in self.process.stdout:
                if line.startswith("listening on "):
                    found["url"] = line.split("listening on ", 1)[1].strip()
                    return

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        reader.join(timeout)
        if "url" not in found:
            self.process.kill()
            raise AssertionError("server did not start:\n" + "".join(self.stderr_lines))
        return found["url"]

    def stop(self, sig=signal.SIGTERM, timeout=60):
        """Sends `sig` and returns the exit status."""
        self.process.send_signal(sig)
        status = self.process.wait(timeout)
        self._stderr_reader.join(timeout)  # every line the server wrote is in stderr_lines
        return status

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
