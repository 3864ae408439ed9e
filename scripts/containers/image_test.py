"""The image, run the way Kubernetes runs it: configured by environment only, read-only root.

    python3 scripts/containers/image_test.py [--image portfolio-service:local]

Needs a running Docker engine (it fails when none answers) and the image (scripts/build-image.sh).
- The image: uid/gid 65532, a HEALTHCHECK, under 60 MB, and nothing in it but the binary, glibc,
  libgcc, CA certificates and the passwd/group files (no shell, no package manager).
- The embedded default: runs as 65532 with `--read-only` and a volume on /data, becomes
  `healthy`, serves CRUD, keeps its data across `docker restart`, and `docker stop` ends it
  with exit code 0 once its drain has passed.
- PostgreSQL and Redis (a private cluster and redis-server listening on the docker bridge's
  gateway, so the containers reach them as pods reach their services): the migration runs from
  the image like the Job, two replicas start, a write through one is read through the other, and
  an update through the second reaches the first's cache.
"""

import argparse
import glob
import io
import ipaddress
import json
import os
import pwd
import shutil
import subprocess
import sys
import tarfile
import time

import harness
from harness import CheckFailed, check, request

MAX_IMAGE_MB = 60
# What the engine puts into every container's file system (`docker export` lists them).
ENGINE_FILES = {"/.dockerenv", "/dev/console", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
DRAIN_S = 2
PREFIX = f"pfs-image-test-{os.getpid()}"


def docker(*args, timeout_s=120, stdin=None):
    result = subprocess.run(["docker", *args], capture_output=True, text=stdin is None, timeout=timeout_s, input=stdin)
    if result.returncode != 0:
        raise CheckFailed(f"docker {' '.join(args[:3])} failed: {result.stderr}")
    return result.stdout


def inspect(container, template):
    return docker("inspect", "--format", template, container).strip()


def published_url(container):
    address = docker("port", container, "8000/tcp").splitlines()[0].strip()
    return f"http://{address}"


def run_container(cleanup, name, image, env, *options):
    argv = ["run", "-d", "--name", name, "--read-only", "-p", "127.0.0.1::8000", *options]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    docker(*argv, image)
    cleanup.callback(lambda: subprocess.run(["docker", "rm", "-f", name], capture_output=True))
    cleanup.on_failure.append(lambda: print(f"--- docker logs {name} (last lines):\n" + subprocess.run(
        ["docker", "logs", "--tail", "15", name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        check=False).stdout))
    return name


def check_image(image):
    user = inspect(image, "{{.Config.User}}")
    check(user == "65532:65532", f"image user is {user!r}, not 65532:65532")
    health = inspect(image, "{{json .Config.Healthcheck.Test}}")
    check("healthcheck" in health, f"HEALTHCHECK does not run the binary's healthcheck: {health}")
    size_mb = int(inspect(image, "{{.Size}}")) / 1e6
    check(size_mb < MAX_IMAGE_MB, f"image is {size_mb:.1f} MB, over {MAX_IMAGE_MB} MB")
    container = docker("create", image).strip()
    try:
        exported = subprocess.run(["docker", "export", container], capture_output=True, check=True).stdout
    finally:
        docker("rm", container)
    programs, names = [], set()
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        for member in tar.getmembers():
            name = "/" + member.name.removeprefix("./").lstrip("/")
            names.add(name)
            library = ".so" in os.path.basename(name)
            if member.isfile() and member.mode & 0o111 and not library and name not in ENGINE_FILES:
                programs.append(name)
    check(programs == ["/usr/local/bin/portfolio-service"], f"programs in the image besides the binary: {programs}")
    for forbidden in ("/bin/sh", "/usr/bin/sh", "/usr/bin/dpkg", "/usr/bin/apt", "/usr/bin/apt-get"):
        check(forbidden not in names, f"{forbidden} is in the image")
    check("/etc/ssl/certs/ca-certificates.crt" in names, "no CA certificates in the image")
    print(f"image {image}: {size_mb:.1f} MB, user 65532:65532, the binary is its only program")
    return size_mb


def check_process_ids(container):
    pid = inspect(container, "{{.State.Pid}}")
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    for key in ("Uid", "Gid"):
        check(set(status[key].split()) == {"65532"}, f"container process {key}: {status[key].strip()}")


def wait_healthy(container, timeout_s):
    harness.eventually(f"{container} healthy", timeout_s,
                       lambda: inspect(container, "{{.State.Health.Status}}") == "healthy", 0.5)


def check_embedded(cleanup, image):
    volume = f"{PREFIX}-data"
    docker("volume", "create", volume)
    cleanup.callback(lambda: subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True))
    container = run_container(cleanup, f"{PREFIX}-embedded", image,
                              {"PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY": f"{DRAIN_S}s"}, "-v", f"{volume}:/data")
    started = time.monotonic()
    wait_healthy(container, 60)
    print(f"embedded: healthy after {time.monotonic() - started:.1f} s (HEALTHCHECK interval 10 s)")
    check_process_ids(container)
    url = published_url(container)
    status, created = request("POST", f"{url}/api/v1/portfolios", {"name": "Container Kept"})
    check(status in (200, 201), f"create: {status} {created}")
    kept = created["portfolioId"]
    status, doomed = request("POST", f"{url}/api/v1/portfolios", {"name": "Container Doomed"})
    check(status in (200, 201), f"second create: {status}")
    status, updated = request("PUT", f"{url}/api/v1/portfolio/{doomed['portfolioId']}",
                              {"portfolioId": doomed["portfolioId"], "name": "Container Renamed", "version": 1})
    check(status == 200 and updated["name"] == "Container Renamed", f"update: {status} {updated}")
    status, _ = request("DELETE", f"{url}/api/v1/portfolio/{doomed['portfolioId']}?version={updated['version']}")
    check(status == 204, f"delete: {status}")
    check(request("GET", f"{url}/api/v1/portfolio/{doomed['portfolioId']}")[0] == 404, "deleted portfolio still there")

    docker("restart", "-t", "20", container)
    url = published_url(container)
    harness.wait_ready(url, 60)
    status, body = request("GET", f"{url}/api/v1/portfolio/{kept}")
    check(status == 200 and body["name"] == "Container Kept", f"after docker restart: {status} {body}")
    print("embedded: CRUD served; the portfolio survived docker restart (volume on /data, read-only root)")

    began = time.monotonic()
    docker("stop", "-t", "20", container)
    stopped_s = time.monotonic() - began
    code = inspect(container, "{{.State.ExitCode}}")
    check(code == "0", f"docker stop: exit code {code}")
    check(DRAIN_S <= stopped_s <= DRAIN_S + 5, f"docker stop took {stopped_s:.1f} s with a {DRAIN_S} s drain")
    print(f"embedded: docker stop -> exit 0 after {stopped_s:.1f} s ({DRAIN_S} s drain)")


def bridge_gateway():
    """The host's address on the default bridge: the gateway, or the subnet's first address (the
    engine's default gateway, which older engines do not report)."""
    config = json.loads(docker("network", "inspect", "bridge", "--format", "{{json (index .IPAM.Config 0)}}"))
    if config.get("Gateway"):
        return config["Gateway"]
    check(config.get("Subnet"), f"the docker bridge network has no gateway or subnet: {config}")
    return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))


def start_private_postgres(cleanup, host):
    """A throwaway PostgreSQL cluster on `host` (trust authentication for the bridge network)."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    check(bins, "PostgreSQL server binaries are missing (scripts/test.sh installs PostgreSQL)")
    bin_dir = os.path.dirname(bins[-1])
    data = os.path.join(cleanup.dir, "pgdata")
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        owner = pwd.getpwnam("postgres")
        os.chmod(cleanup.dir, 0o755)
        os.mkdir(data, 0o700)
        os.chown(data, owner.pw_uid, owner.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run(as_user + [f"{bin_dir}/initdb", "-D", data, "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True)
    with open(os.path.join(data, "pg_hba.conf"), "a") as f:
        f.write("host all all 0.0.0.0/0 trust\n")
    port = harness.free_port(host)
    cleanup.start("postgres", as_user + [f"{bin_dir}/postgres", "-D", data, "-p", str(port), "-k", data,
                                         "-c", f"listen_addresses={host}", "-c", "fsync=off"])
    harness.eventually("private PostgreSQL accepting connections", 30, lambda: subprocess.run(
        [f"{bin_dir}/pg_isready", "-q", "-h", host, "-p", str(port)]).returncode == 0, 0.2)
    return f"postgres://postgres@{host}:{port}/postgres"


def check_postgres_replicas(cleanup, image):
    gateway = bridge_gateway()
    database_url = start_private_postgres(cleanup, gateway)
    redis_url = harness.start_redis(cleanup, gateway)
    env = {"PORTFOLIO_ENV": "production", "PORTFOLIO_DATABASE_URL": database_url, "PORTFOLIO_REDIS_URL": redis_url,
           "PORTFOLIO_DATABASE__MIGRATE_ON_START": "false", "PORTFOLIO_SERVER__SHUTDOWN_DRAIN_DELAY": f"{DRAIN_S}s"}
    migrate = subprocess.run(["docker", "run", "--rm", "--read-only", "-e", f"PORTFOLIO_DATABASE_URL={database_url}",
                              image, "migrate", "up"], capture_output=True, text=True, timeout=120)
    check(migrate.returncode == 0, f"migrate up from the image failed: {migrate.stderr}")
    replicas = [run_container(cleanup, f"{PREFIX}-pg-{i}", image, env) for i in range(2)]
    urls = [published_url(r) for r in replicas]
    for url in urls:
        harness.wait_ready(url, 60)
    status, created = request("POST", f"{urls[0]}/api/v1/portfolios", {"name": "Written Through One"})
    check(status in (200, 201), f"create through replica 0: {status} {created}")
    portfolio = created["portfolioId"]
    status, body = request("GET", f"{urls[1]}/api/v1/portfolio/{portfolio}")
    check(status == 200 and body["name"] == "Written Through One", f"read through replica 1: {status} {body}")
    request("GET", f"{urls[0]}/api/v1/portfolio/{portfolio}")  # cached on replica 0 now
    status, body = request("PUT", f"{urls[1]}/api/v1/portfolio/{portfolio}",
                           {"portfolioId": portfolio, "name": "Renamed Through Two", "version": 1})
    check(status == 200, f"update through replica 1: {status} {body}")
    harness.eventually("replica 0 serving the update made through replica 1", 5, lambda: request(
        "GET", f"{urls[0]}/api/v1/portfolio/{portfolio}")[1]["name"] == "Renamed Through Two")
    for replica in replicas:
        docker("stop", "-t", "20", replica)
        code = inspect(replica, "{{.State.ExitCode}}")
        check(code == "0", f"{replica}: exit code {code} after docker stop")
    print(f"postgres + redis on the bridge ({gateway}): migration from the image, two replicas, "
          "write through one read through the other, update reached the other's cache; both stopped with 0")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", default=os.environ.get("IMAGE", "portfolio-service:local"))
    args = parser.parse_args()
    check(shutil.which("docker"), "no docker client (scripts/test.sh installs docker.io)")
    info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"], capture_output=True, text=True)
    check(info.returncode == 0, f"no Docker engine answers: {info.stderr.strip()} (scripts/test.sh starts dockerd)")
    check(subprocess.run(["docker", "image", "inspect", args.image], capture_output=True).returncode == 0,
          f"image {args.image} is missing (scripts/build-image.sh builds it)")
    started = time.monotonic()
    check_image(args.image)
    with harness.Cleanup() as cleanup:
        check_embedded(cleanup, args.image)
    with harness.Cleanup() as cleanup:
        check_postgres_replicas(cleanup, args.image)
    print(f"image test passed in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except CheckFailed as failure:
        sys.exit(f"image test FAILED: {failure}")
