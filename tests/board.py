"""A real OpenSSH server on a loopback port, standing in for the board."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import free_port

SSHD = Path("/usr/sbin/sshd")


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


@dataclass
class Board:
    """sshd with a throw-away host key, one authorized client key, and a deploy folder.

    `bin/` is first on the board's PATH, so tests can place stub commands (a `docker` that
    records its arguments) where the apply script will find them.
    """

    root: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def deploy_path(self) -> Path:
        return self.root / "board"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def client_key(self) -> Path:
        return self.root / "client_key"

    @property
    def known_hosts(self) -> Path:
        return self.root / "known_hosts"

    @property
    def user(self) -> str:
        return getpass.getuser()

    def host_fingerprint(self) -> str:
        """Its host key's fingerprint as `ssh-keygen -lf` prints it, for the operator to compare."""
        out = subprocess.run(
            ["ssh-keygen", "-lf", str(self.root / "host_key.pub")],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return out.split()[1]

    def authorize(self, public_key: str) -> None:
        """Let another client key log in, as the operator does on the board."""
        with (self.root / "authorized_keys").open("a") as f:
            f.write(public_key.strip() + "\n")

    def start(self) -> Board:
        if not SSHD.exists():
            raise RuntimeError(f"{SSHD} is missing: `make test` installs openssh-server")
        for folder in (self.deploy_path, self.bin, Path("/run/sshd")):
            folder.mkdir(parents=True, exist_ok=True)
        host_key = keygen(self.root / "host_key")
        keygen(self.client_key)
        (self.root / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        pub = Path(f"{host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {pub[0]} {pub[1]}\n")
        config = self.root / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"PidFile {self.root}/sshd.pid\nAuthorizedKeysFile {self.root}/authorized_keys\n"
            "StrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "UsePAM no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
            f"SetEnv PATH={self.bin}:/usr/local/bin:/usr/bin:/bin\nLogLevel ERROR\n"
        )
        log = (self.root / "sshd.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                [str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=log
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.root / 'sshd.log').read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not listen within 20 s")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def env(self, **extra: str) -> dict[str, str]:
        """DEPLOY_* settings that reach this board."""
        return {
            "DEPLOY_HOST": "127.0.0.1",
            "DEPLOY_PORT": str(self.port),
            "DEPLOY_USER": self.user,
            "DEPLOY_SSH_KEY": str(self.client_key),
            "DEPLOY_KNOWN_HOSTS": str(self.known_hosts),
            "DEPLOY_PATH": str(self.deploy_path),
            **extra,
        }

    def stub(self, name: str, script: str) -> Path:
        path = self.bin / name
        path.write_text(f"#!/bin/sh\n{script}\n")
        path.chmod(0o755)
        return path
