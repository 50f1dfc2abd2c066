"""The local PostgreSQL that plays the deployed RDS instance: a cluster under .local/postgres on 127.0.0.1.

Its master login is the one the deployed master secret holds (user name, generated password), so the migrate task
signs in exactly as it would against RDS and creates the API's own login, granted `rds_iam` as on RDS.

IAM database authentication is RDS's own: RDS checks each token (signature, 15-minute life, rds-db:connect on the
login's dbuser ARN). This cluster cannot, so it plays the part it can: it has an `rds_iam` role like RDS, and admits
that role's members over TLS from 127.0.0.1 without checking the token the API sends (pg_hba `trust`). Every other
login still needs its password (scram-sha-256), and plain text is refused for all.
Connections are TLS only, with a certificate for localhost/127.0.0.1 from a CA made here: clients verify it with
sslmode verify-full, as the API verifies RDS's. As root, the cluster belongs to an unprivileged account (PostgreSQL
refuses to run as root).
"""

from __future__ import annotations

import glob
import ipaddress
import os
import pwd
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg import sql

from .processes import LocalError, Registry, wait_for

SUPERUSER = "postgres"
RDS_IAM_ROLE = "rds_iam"   # RDS's role for IAM database authentication (its members sign in with tokens)


def find_binary(name: str) -> Path:
    """`name` on PATH, else the newest Debian-style /usr/lib/postgresql/<version>/bin/<name>."""
    on_path = shutil.which(name)
    if on_path:
        return Path(on_path)
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0)
    if not found:
        raise LocalError(f"PostgreSQL's {name} is not installed: run `make postgres-server` "
                         "(apt package postgresql), then `make up` again")
    return Path(found[-1])


class LocalPostgres:
    def __init__(self, directory: Path, *, port: int) -> None:
        self.directory = directory
        self.port = port
        self.sockets = directory / "socket"
        self.tls = directory / "tls"
        self.account = unprivileged_account() if os.geteuid() == 0 else None

    def start(self, registry: Registry) -> None:
        self.check_reachable()
        data = self.directory / "data"
        if not data.is_dir():
            self.directory.mkdir(parents=True, exist_ok=True)
            self._own(self.directory)
            self._run(["mkdir", "-p", str(self.sockets)])
            self._run([str(find_binary("initdb")), "--pgdata", str(data), "--username", SUPERUSER,
                       "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--no-sync"])
            # TCP only over TLS (as RDS with rds.force_ssl): a plain-text client is refused. Members of rds_iam
            # (the API's IAM login) sign in with a token RDS would check and this cluster cannot (see above).
            with (data / "pg_hba.conf").open("w") as rules:
                rules.write(f"local all all trust\nhostssl all +{RDS_IAM_ROLE} 127.0.0.1/32 trust\n"
                            "hostssl all all 127.0.0.1/32 scram-sha-256\n")
            self._own(data / "pg_hba.conf")
            self._make_certificates()
        process = registry.spawn("postgres", self._as_owner([
            str(find_binary("postgres")), "-D", str(data), "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
            "-c", f"unix_socket_directories={self.sockets}", "-c", "fsync=off", "-c", "ssl=on",
            "-c", f"ssl_cert_file={self.tls / 'server.pem'}", "-c", f"ssl_key_file={self.tls / 'server.key'}"]),
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"})
        wait_for(lambda: (self.sockets / f".s.PGSQL.{self.port}").exists() and self._accepts(), what="PostgreSQL",
                 seconds=30, log=process.log)

    def check_reachable(self) -> None:
        """As root the cluster runs as another account, which must be able to reach its directory."""
        if self.account is not None and not _reachable_by(self.directory.parent, self.account):
            raise LocalError(f"{self.directory.parent} is not reachable by the '{self.account.pw_name}' account "
                             "PostgreSQL runs as (it refuses root): choose a state directory under world-readable "
                             "parents")

    def client_tls(self) -> dict[str, str]:
        """Where and how a task reaches this cluster in place of RDS (the settings selfnest_api reads)."""
        return {"DB_HOST": "127.0.0.1", "DB_PORT": str(self.port), "DB_SSLMODE": "verify-full",
                "DB_SSLROOTCERT": str(self.tls / "ca.pem")}

    def ensure_master_login(self, *, username: str, password: str, dbname: str) -> None:
        """The master secret's login and database, and the rds_iam role (what RDS creates at launch), idempotent."""
        with psycopg.connect(host=str(self.sockets), port=self.port, user=SUPERUSER, dbname="postgres",
                             autocommit=True) as admin:
            if not admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RDS_IAM_ROLE,)).fetchone():
                admin.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(RDS_IAM_ROLE)))
            exists = admin.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (username,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            admin.execute(sql.SQL(verb + " ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
                sql.Identifier(username), sql.Literal(password)))
            if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone():
                admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname),
                                                                            sql.Identifier(username)))

    def _make_certificates(self) -> None:
        """A CA (its certificate is the clients' root) and the server's certificate for localhost and 127.0.0.1."""
        self.tls.mkdir(parents=True, exist_ok=True)
        now = datetime.now(UTC)
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "refarch local PostgreSQL CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
              .not_valid_after(now + timedelta(days=365))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .sign(ca_key, hashes.SHA256()))
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = (x509.CertificateBuilder()
                  .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                  .issuer_name(ca_name).public_key(server_key.public_key())
                  .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
                  .not_valid_after(now + timedelta(days=365))
                  .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                              x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                 critical=False)
                  .sign(ca_key, hashes.SHA256()))
        (self.tls / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.tls / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
        key_file = self.tls / "server.key"
        key_file.touch(mode=0o600)   # PostgreSQL refuses a key file others can read
        key_file.write_bytes(server_key.private_bytes(serialization.Encoding.PEM,
                                                      serialization.PrivateFormat.TraditionalOpenSSL,
                                                      serialization.NoEncryption()))
        for path in (self.tls, self.tls / "ca.pem", self.tls / "server.pem", key_file):
            self._own(path)

    def _accepts(self) -> bool:
        try:
            with psycopg.connect(host=str(self.sockets), port=self.port, user=SUPERUSER, dbname="postgres",
                                 connect_timeout=2):
                return True
        except psycopg.OperationalError:
            return False

    def _own(self, path: Path) -> None:
        if self.account is not None:
            os.chown(path, self.account.pw_uid, self.account.pw_gid)

    def _as_owner(self, command: list[str]) -> list[str]:
        if self.account is None:
            return command
        return ["setpriv", f"--reuid={self.account.pw_uid}", f"--regid={self.account.pw_gid}", "--clear-groups",
                *command]

    def _run(self, command: list[str]) -> None:
        finished = subprocess.run(self._as_owner(command), capture_output=True, text=True, check=False, cwd="/",
                                  env={**os.environ, "LC_ALL": "C", "TZ": "UTC"})
        if finished.returncode != 0:
            raise LocalError(f"{Path(command[0]).name} failed: "
                             f"{(finished.stderr.strip() or finished.stdout.strip()).splitlines()[-1]}")


def _reachable_by(directory: Path, account: pwd.struct_passwd) -> bool:
    """Every folder from / down to `directory` lets `account` through (others' execute bit, or its own)."""
    for folder in [directory.resolve(), *directory.resolve().parents]:
        if folder.exists() and folder.stat().st_uid != account.pw_uid and not folder.stat().st_mode & 0o001:
            return False
    return True


def unprivileged_account() -> pwd.struct_passwd:
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise LocalError("running as root and neither a postgres nor a nobody account exists to own the local cluster")
