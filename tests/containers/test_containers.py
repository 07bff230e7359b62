"""The container proofs of the fleet (issue 13), run by `make container-test` (part of `make test`).

- the Kubernetes manifests (`kubectl kustomize`, base and overlay) use the same image, commands,
  arguments and environment as deploy/compose.yaml with its defaults, N is set in one place in
  each, and the rendered manifests pass the Kubernetes schemas (kubernetes-validate, strict);
- the Kubernetes manifests are operable: ports, one scrape target, Jobs with a deadline and a
  TTL, hardened pods, room for the workers' files;
- the image: FROM scratch, the entrypoint, a non-root user, what it holds;
- docker-compose with 3 workers: all PASS, started within 0.5 s of each other, the plan's chunk
  and file sizes honoured (in the report and on the workers' volumes), the reports written, the
  dashboard's API reachable on the published port with the token;
- docker-compose again: one worker `docker kill`ed mid-run -> ABORTED, one `docker network
  disconnect`ed -> TIMED OUT, the third PASS, the server exits 3;
- docker-compose with a threshold that fails (an override file adds it to the server's command)
  and --abort-on-fail: `docker-compose up --exit-code-from server` exits 4;
- a single-node Docker Swarm (`docker swarm init --advertise-addr 127.0.0.1`) and `docker stack
  deploy` of the same file with 3 replicas: all PASS.

Everything a test creates (image, containers, networks, volumes, stack, swarm membership, the
docker_gwbridge network Swarm leaves behind) it removes, also when it fails. The tests talk only
to loopback (the published dashboard port) and to the Docker daemon.

Environment: LOADMON_BIN, the release binary to put in the image (the Makefile passes it).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import tarfile
import io
import time
import tomllib
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "deploy" / "compose.yaml"
KUSTOMIZE_BASE = ROOT / "deploy" / "kubernetes"
KUSTOMIZE_PVC = ROOT / "deploy" / "kubernetes" / "overlays" / "pvc-files"
_CARGO = tomllib.loads((ROOT / "Cargo.toml").read_text())
VERSION = _CARGO.get("workspace", {}).get("package", {}).get("version") \
    or _CARGO["package"]["version"]
MIB = 1 << 20
# A deploy/.env of the user's would change the defaults (docker-compose reads it): not here.
COMPOSE_ARGS = ["--env-file", str(Path(__file__).with_name("no.env")), "-f", str(COMPOSE)]


# ---------------------------------------------------------------------------------------------
# helpers


def run(cmd: list[str], *, env: dict[str, str] | None = None, check: bool = True,
        timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    p = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd)} exited {p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any LOADMON_* variable, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOADMON_")}
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(port: int, path: str, token: str) -> Any:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=2) as r:
        return json.load(r)


def forward_rules() -> str:
    """iptables' FORWARD chain, for a message when containers cannot reach each other."""
    p = subprocess.run(["iptables", "-S", "FORWARD"], capture_output=True, text=True)
    return p.stdout + p.stderr


def poll(what: str, fn: Any, timeout: float, every: float = 0.2) -> Any:
    """Calls fn until it returns something truthy (exceptions count as not yet)."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            value = fn()
            if value:
                return value
            last = value
        except Exception as e:  # noqa: BLE001 - the service may not be up yet
            last = e
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


def docker_cp_bytes(container: str, path: str) -> dict[str, tuple[int, bytes]]:
    """`docker cp container:path -`: {member name: (size, content)} (content of regular files)."""
    p = subprocess.run(["docker", "cp", f"{container}:{path}", "-"], capture_output=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr.decode()
    out = {}
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
        for m in tar.getmembers():
            if m.isfile():
                f = tar.extractfile(m)
                data = f.read() if f and m.size < 16 * MIB else b""
                out[m.name] = (m.size, data)
    return out


def ts(s: str) -> float:
    return datetime.fromisoformat(s).timestamp()


def labelled(kind: str, label: str) -> list[str]:
    """Names/ids of docker objects of `kind` (container, network, volume) with `label`."""
    if kind == "container":
        cmd = ["docker", "ps", "-aq", "--filter", f"label={label}"]
    else:
        cmd = ["docker", kind, "ls", "-q", "--filter", f"label={label}"]
    return run(cmd).stdout.split()


def container_ip(container: str) -> str:
    return run(["docker", "inspect", "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                container]).stdout.split()[0]


def client_by_peer(clients: list[dict[str, Any]], ip: str) -> dict[str, Any]:
    found = [c for c in clients if (c.get("peer") or "").rsplit(":", 1)[0] == ip]
    assert len(found) == 1, (ip, clients)
    return found[0]


def check_plan_honoured(report: dict[str, Any], chunk_mb: int, file_mb: int) -> None:
    for c in report["clients"]:
        assert c["chunk_size_mb"] == chunk_mb, c
        assert c["file_size_mb"] == file_mb, c
        if c["status"] == "PASS":
            assert c["files_written"] >= 2, c
            # whole chunks only, and at least every finished file
            assert c["bytes_written"] % (chunk_mb * MIB) == 0, c
            assert c["bytes_written"] >= c["files_written"] * file_mb * MIB, c


# ---------------------------------------------------------------------------------------------
# the image


@pytest.fixture(scope="session")
def image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Builds loadmon:test-<random> as `make image` builds loadmon:<version>; removes it after."""
    binary = os.environ.get("LOADMON_BIN")
    assert binary and Path(binary).is_file(), \
        "set LOADMON_BIN to the release binary (make container-test does)"
    ctx = tmp_path_factory.mktemp("image") / "context"
    run([str(ROOT / "deploy" / "image" / "assemble.sh"), binary, str(ctx)])
    tag = f"loadmon:test-{secrets.token_hex(4)}"
    try:
        t0 = time.monotonic()
        run(["docker", "build", "-q", "-f", str(ROOT / "Containerfile"),
             "--build-arg", f"VERSION={VERSION}", "-t", tag, str(ctx)], timeout=300)
        print(f"\nimage {tag} built in {time.monotonic() - t0:.1f} s")
        yield tag
    finally:
        run(["docker", "rmi", "-f", tag], check=False)


def test_image_is_scratch_with_the_binary_and_a_user(image: str) -> None:
    info = json.loads(run(["docker", "image", "inspect", image]).stdout)[0]
    cfg = info["Config"]
    assert cfg["Entrypoint"] == ["/usr/local/bin/loadmon"]
    assert cfg["User"] == "10001:10001"
    assert cfg["WorkingDir"] == "/data"
    assert cfg["Labels"]["org.opencontainers.image.version"] == VERSION
    assert info["Size"] < 40 * MIB, info["Size"]
    # It runs, as that user, and says its version.
    out = run(["docker", "run", "--rm", image, "--version"]).stdout
    assert out.strip() == f"loadmon {VERSION}"
    # What is in it: the binary, the libraries ldd listed, /etc files, nothing else.
    name = f"loadmon-test-{secrets.token_hex(4)}"
    try:
        run(["docker", "create", "--name", name, image])
        p = subprocess.run(["docker", "export", name], capture_output=True, timeout=60)
        assert p.returncode == 0
        with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tar:
            files = sorted(m.name for m in tar.getmembers() if m.isfile())
            owners = {m.name.rstrip("/"): (m.uid, m.mode) for m in tar.getmembers()}
    finally:
        run(["docker", "rm", "-f", name], check=False)
    # docker export adds the files Docker mounts into every container (.dockerenv, etc/hosts,
    # etc/hostname, etc/resolv.conf, dev/console) as empty placeholders.
    docker_adds = {".dockerenv", "dev/console", "etc/hosts", "etc/hostname", "etc/resolv.conf"}
    ours = [f for f in files if f not in docker_adds]
    assert "usr/local/bin/loadmon" in ours
    assert {"etc/passwd", "etc/group", "etc/nsswitch.conf"} <= set(ours)
    libs = [f for f in ours if not f.startswith(("usr/local/bin/", "etc/"))]
    assert libs and all(re.search(r"\.so(\.\d+)*$", f) for f in libs), libs
    assert owners["data"][0] == 10001 and owners["reports"][0] == 10001
    assert owners["tmp"][1] & 0o1777 == 0o1777


# ---------------------------------------------------------------------------------------------
# Kubernetes manifests against the compose file


def compose_config(**env: str) -> dict[str, Any]:
    out = run(["docker-compose", *COMPOSE_ARGS, "config"], env=clean_env(**env)).stdout
    return yaml.safe_load(out)


def kustomize(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    out = run(["kubectl", "kustomize", str(path)]).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def container(job: dict[str, Any]) -> dict[str, Any]:
    cs = job["spec"]["template"]["spec"]["containers"]
    assert len(cs) == 1
    return cs[0]


def env_names_compose(service: dict[str, Any]) -> set[str]:
    env = service.get("environment") or {}
    return set(env) if isinstance(env, dict) else {e.split("=", 1)[0] for e in env}


@pytest.mark.parametrize("path", [KUSTOMIZE_BASE, KUSTOMIZE_PVC], ids=["base", "pvc-files"])
def test_kubernetes_matches_compose(path: Path) -> None:
    compose = compose_config()
    server_c, worker_c = compose["services"]["server"], compose["services"]["worker"]
    k8s = kustomize(path)
    server_job = k8s[("Job", "loadmon-server")]
    workers_job = k8s[("Job", "loadmon-workers")]
    server_k, worker_k = container(server_job), container(workers_job)

    # One image, the one `make image` tags.
    assert server_c["image"] == worker_c["image"] == f"loadmon:{VERSION}"
    assert server_k["image"] == worker_k["image"] == f"loadmon:{VERSION}"
    # The image's entrypoint in both; the compose `command` is the container's `args`.
    for svc in (server_c, worker_c):
        assert "entrypoint" not in svc
    for c in (server_k, worker_k):
        assert "command" not in c
    assert server_k["args"] == server_c["command"]
    assert worker_k["args"] == worker_c["command"]
    # The same environment variables (values: compose passes the host's, Kubernetes a Secret's).
    assert {e["name"] for e in server_k.get("env", [])} == env_names_compose(server_c)
    assert {e["name"] for e in worker_k.get("env", [])} == env_names_compose(worker_c)
    # N: replicas = --expect-clients in compose; parallelism = completions = --expect-clients.
    n = worker_c["deploy"]["replicas"]
    assert f"--expect-clients={n}" in server_c["command"]
    spec = workers_job["spec"]
    assert spec["parallelism"] == spec["completions"] == n
    assert spec["completionMode"] == "Indexed"
    # The workers reach the server by the name Kubernetes' Service and compose's alias give it.
    service = k8s[("Service", "loadmon-server")]
    assert "--host=loadmon-server" in worker_c["command"]
    assert "loadmon-server" in server_c["networks"]["fleet"]["aliases"]
    ports = {p["name"]: p["port"] for p in service["spec"]["ports"]}
    assert f"--port={ports['protocol']}" in server_c["command"]
    assert f"--port={ports['protocol']}" in worker_c["command"]
    assert f"--http=0.0.0.0:{ports['http']}" in server_c["command"]
    assert service["metadata"]["annotations"]["prometheus.io/scrape"] == "true"
    assert service["metadata"]["annotations"]["prometheus.io/port"] == str(ports["http"])
    # Same mounts: /reports on the server, /data (the workers' --out-dir) on each worker.
    assert "/reports" in {m["mountPath"] for m in server_k["volumeMounts"]}
    assert [m["mountPath"] for m in worker_k["volumeMounts"]] == ["/data"]
    assert any(v.endswith(":/reports:rw") or v.endswith(":/reports")
               for v in map(str, server_c["volumes"])) or \
        any(isinstance(v, dict) and v.get("target") == "/reports" for v in server_c["volumes"])
    # One worker pod per node.
    anti = workers_job["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"]
    term = anti["requiredDuringSchedulingIgnoredDuringExecution"][0]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    labels = workers_job["spec"]["template"]["metadata"]["labels"]
    assert term["labelSelector"]["matchLabels"].items() <= labels.items()
    # Files: an emptyDir in the base, a PVC template in the overlay.
    (files,) = [v for v in workers_job["spec"]["template"]["spec"]["volumes"]
                if v["name"] == "files"]
    if path == KUSTOMIZE_BASE:
        assert set(files) == {"name", "emptyDir"}
    else:
        assert set(files) == {"name", "ephemeral"}
        assert files["ephemeral"]["volumeClaimTemplate"]["spec"]["accessModes"] == \
            ["ReadWriteOnce"]
    # The Service selects the server pod.
    sel = service["spec"]["selector"]
    assert sel.items() <= server_job["spec"]["template"]["metadata"]["labels"].items()
    # Every manifest passes the Kubernetes schemas, strictly (no unknown field), for the
    # oldest version with backoffLimitPerIndex on by default (1.29) and the newest known.
    import kubernetes_validate  # noqa: PLC0415 - installed by make container-test

    for version in ("1.29.0", kubernetes_validate.latest_version()):
        for (kind, name), doc in k8s.items():
            kubernetes_validate.validate(doc, version, strict=True)


def arg_value(args: list[str], flag: str) -> str:
    """The value of `--flag=value` in `args` (the manifests write every flag that way)."""
    (value,) = [a.split("=", 1)[1] for a in args if a.startswith(f"{flag}=")]
    return value


@pytest.mark.parametrize("path", [KUSTOMIZE_BASE, KUSTOMIZE_PVC], ids=["base", "pvc-files"])
def test_kubernetes_is_operable(path: Path) -> None:
    """What an operator needs beyond "same arguments as compose": ports that are the ones the
    server listens on, one scrape target, Jobs that end and go away, pods that cannot do more
    than write their files, and room for those files."""
    k8s = kustomize(path)
    compose = compose_config()["services"]
    server_job, workers_job = k8s[("Job", "loadmon-server")], k8s[("Job", "loadmon-workers")]
    server_k, worker_k = container(server_job), container(workers_job)
    service = k8s[("Service", "loadmon-server")]
    sargs, wargs = server_k["args"], worker_k["args"]

    # The container ports are the ones the server binds; the Service and the probe use them.
    cports = {p["name"]: p["containerPort"] for p in server_k["ports"]}
    assert cports["protocol"] == int(arg_value(sargs, "--port"))
    assert cports["http"] == int(arg_value(sargs, "--http").rsplit(":", 1)[1])
    for p in service["spec"]["ports"]:
        assert p["targetPort"] in cports, p
    assert server_k["readinessProbe"]["httpGet"]["port"] in ("http", cports["http"])
    # One scrape target: annotations on the Service only (on the pod as well, the usual
    # kubernetes-pods and kubernetes-service-endpoints jobs would both scrape the server and
    # every fleet total would count twice), on the HTTP port, at /metrics.
    notes = service["metadata"]["annotations"]
    assert (notes["prometheus.io/port"], notes["prometheus.io/path"]) == \
        (str(cports["http"]), "/metrics")
    for job in (server_job, workers_job):
        pod_notes = job["spec"]["template"]["metadata"].get("annotations") or {}
        assert not any(k.startswith("prometheus.io/") for k in pod_notes), pod_notes

    # Jobs end: a deadline past everything a run may take (workers reaching the server, the
    # fleet's start timeout, the run, a last heartbeat timeout, the linger), so that workers
    # left Pending (fewer nodes than N) do not keep the Job open for ever; and they go away a
    # while after (the report stays on the PVC). The server is never run twice.
    longest = (int(arg_value(wargs, "--connect-timeout")) + int(arg_value(sargs, "--start-timeout"))
               + int(arg_value(sargs, "--runtime")) + int(arg_value(sargs, "--heartbeat-timeout"))
               + int(arg_value(sargs, "--http-linger")))
    for job in (server_job, workers_job):
        spec = job["spec"]
        assert spec["activeDeadlineSeconds"] >= longest + 60, (job["metadata"]["name"], longest)
        assert spec["ttlSecondsAfterFinished"] >= 3600
        assert spec["template"]["spec"]["restartPolicy"] == "Never"
    assert server_job["spec"]["backoffLimit"] == 0

    # Pods: the image's user, not root, no privilege, read-only root, no API token, and the
    # same hardening as the compose services.
    for job, c, svc in ((server_job, server_k, compose["server"]),
                        (workers_job, worker_k, compose["worker"])):
        pod = job["spec"]["template"]["spec"]
        sc = pod["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == sc["runAsGroup"] == 10001
        assert pod["automountServiceAccountToken"] is False
        csc = c["securityContext"]
        assert csc["readOnlyRootFilesystem"] is True and csc["allowPrivilegeEscalation"] is False
        assert csc["capabilities"]["drop"] == ["ALL"]
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(c["resources"]["requests"])

    # Room for a worker's files: the finished files it keeps, the one being written and the
    # probe, in the requested ephemeral storage and the emptyDir's limit (base) or the PVC's
    # request (overlay).
    keep, file_mb = arg_value(sargs, "--keep-files"), int(arg_value(sargs, "--filesize"))
    assert keep != "all", "--keep-files=all fills any volume"
    need = (int(keep) + 2) * file_mb * MIB
    (files,) = [v for v in workers_job["spec"]["template"]["spec"]["volumes"]
                if v["name"] == "files"]
    if "emptyDir" in files:
        assert quantity(files["emptyDir"]["sizeLimit"]) >= need
        assert quantity(worker_k["resources"]["requests"]["ephemeral-storage"]) >= need
    else:
        claim = files["ephemeral"]["volumeClaimTemplate"]["spec"]
        assert quantity(claim["resources"]["requests"]["storage"]) >= need


def quantity(q: str) -> int:
    """A Kubernetes storage quantity (`512Mi`, `1Gi`, `2G`) in bytes."""
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    m = re.fullmatch(r"(\d+)([KMGT]i|[kMGT])?", str(q))
    assert m, q
    return int(m.group(1)) * units.get(m.group(2) or "", 1)


def test_swarm_reads_the_compose_file_as_compose_does() -> None:
    """`docker stack config` (what `docker stack deploy` would deploy; no swarm needed) has
    the same images, commands, environment and replicas as `docker-compose config`."""
    for env in ({}, {"LOADMON_WORKERS": "5", "LOADMON_RUN_TIME": "9"}):
        compose = compose_config(**env)["services"]
        out = run(["docker", "stack", "config", "-c", str(COMPOSE)], env=clean_env(**env)).stdout
        swarm = yaml.safe_load(out)["services"]
        assert swarm.keys() == compose.keys()
        for name in compose:
            for key in ("image", "command", "environment"):
                assert swarm[name][key] == compose[name][key], (name, key)
            assert swarm[name]["deploy"]["replicas"] == compose[name]["deploy"]["replicas"]
            assert swarm[name]["deploy"]["restart_policy"] == {"condition": "none"}
        assert swarm["server"]["deploy"]["endpoint_mode"] == "dnsrr"
        assert all(p["mode"] == "host" for p in swarm["server"]["ports"])


def test_the_fleet_size_is_set_in_one_place(tmp_path: Path) -> None:
    c = compose_config(LOADMON_WORKERS="7")
    assert c["services"]["worker"]["deploy"]["replicas"] == 7
    assert "--expect-clients=7" in c["services"]["server"]["command"]
    # Kubernetes: an overlay as the README says (patch parallelism, repeat the base's
    # replacements) moves completions and --expect-clients with it.
    base = KUSTOMIZE_BASE / "base"
    replacements = yaml.safe_load((base / "kustomization.yaml").read_text())["replacements"]
    overlay = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(base, tmp_path)],
        "patches": [{"target": {"kind": "Job", "name": "loadmon-workers"},
                     "patch": "- op: replace\n  path: /spec/parallelism\n  value: 7\n"}],
        "replacements": replacements,
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    k8s = kustomize(tmp_path)
    spec = k8s[("Job", "loadmon-workers")]["spec"]
    assert spec["parallelism"] == spec["completions"] == 7
    assert "--expect-clients=7" in container(k8s[("Job", "loadmon-server")])["args"]


# ---------------------------------------------------------------------------------------------
# docker-compose


class ComposeProject:
    """A compose project of deploy/compose.yaml, torn down (down -v) however the test ends."""

    def __init__(self, image: str, **settings: str) -> None:
        # More compose files after deploy/compose.yaml (`-f override.yaml`), e.g. thresholds.
        self.extra_files: list[Path] = []
        self.name = f"lmtest{secrets.token_hex(4)}"
        self.token = secrets.token_hex(16)
        self.http_port = free_port()
        self.env = clean_env(LOADMON_IMAGE=image, LOADMON_TOKEN=self.token,
                             LOADMON_HTTP_PORT=str(self.http_port), **settings)

    def compose(self, *args: str, check: bool = True, timeout: float = 120) \
            -> subprocess.CompletedProcess[str]:
        files = [a for f in self.extra_files for a in ("-f", str(f))]
        return run(["docker-compose", "-p", self.name, *COMPOSE_ARGS, *files, *args],
                   env=self.env, check=check, timeout=timeout)

    def containers(self, service: str) -> list[str]:
        """Container names of `service`, by replica number."""
        ids = run(["docker", "ps", "-aq",
                   "--filter", f"label=com.docker.compose.project={self.name}",
                   "--filter", f"label=com.docker.compose.service={service}"]).stdout.split()
        rows = []
        for i in ids:
            name, num = run(["docker", "inspect", "-f",
                             '{{.Name}} {{index .Config.Labels "com.docker.compose.container-number"}}',
                             i]).stdout.split()
            rows.append((int(num), name.lstrip("/")))
        return [n for _, n in sorted(rows)]

    def wait_fleet_started(self, n: int, timeout: float) -> dict[str, Any]:
        """/api/server once the fleet of n started; on failure, says why it may not have."""
        try:
            return poll("the fleet to start",
                        lambda: (s := get_json(self.http_port, "/api/server", self.token))
                        and s["fleet"]["started"] == n and s, timeout)
        except AssertionError as e:
            raise AssertionError(
                f"{e}\nserver log:\n{self.logs('server')}\nworker logs:\n{self.logs('worker')}"
                f"\niptables FORWARD (Docker's policy is DROP; its own ACCEPT rules for the "
                f"project's bridge should be there):\n{forward_rules()}") from None

    def wait_server(self, timeout: float) -> int:
        (server,) = self.containers("server")
        return int(run(["docker", "wait", server], timeout=timeout).stdout.strip())

    def report(self) -> dict[str, Any]:
        (server,) = self.containers("server")
        files = docker_cp_bytes(server, "/reports")
        assert {"reports/report.json", "reports/report.html"} <= set(files), files.keys()
        assert files["reports/report.html"][0] > 1000
        return json.loads(files["reports/report.json"][1])

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-color", service, check=False).stdout

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", "--timeout", "2", check=False)
        label = f"com.docker.compose.project={self.name}"
        left = {k: labelled(k, label) for k in ("container", "network", "volume")}
        for c in left["container"]:
            run(["docker", "rm", "-f", "-v", c], check=False)
        for n in left["network"]:
            run(["docker", "network", "rm", n], check=False)
        for v in left["volume"]:
            run(["docker", "volume", "rm", "-f", v], check=False)


@contextlib.contextmanager
def compose_project(image: str, **settings: str) -> Iterator[ComposeProject]:
    p = ComposeProject(image, **settings)
    volumes: set[str] = set()
    try:
        yield p
    finally:
        # Anonymous volumes of the workers: `down -v` removes them; make sure.
        for c in p.containers("worker") + p.containers("server"):
            mounts = run(["docker", "inspect", "-f",
                          "{{range .Mounts}}{{.Name}} {{end}}", c], check=False).stdout
            volumes.update(mounts.split())
        if os.environ.get("LOADMON_TEST_KEEP"):
            print(f"kept compose project {p.name}")
            return
        p.down()
        for v in volumes:
            run(["docker", "volume", "rm", "-f", v], check=False)
        label = f"com.docker.compose.project={p.name}"
        assert not labelled("container", label) and not labelled("network", label), \
            f"compose project {p.name} left something behind"


SMALL_PLAN = dict(LOADMON_CHUNKSIZE="1", LOADMON_FILESIZE="4", LOADMON_MIN_CHUNKSIZE="1",
                  LOADMON_KEEP_FILES="2")


def test_compose_fleet_starts_together_and_passes(image: str) -> None:
    with compose_project(image, LOADMON_WORKERS="3", LOADMON_RUN_TIME="5",
                         LOADMON_START_TIMEOUT="60", **SMALL_PLAN) as p:
        t0 = time.monotonic()
        p.compose("up", "-d")
        assert len(p.containers("worker")) == 3
        # The published dashboard port answers on loopback, with the token (not without).
        page = poll("the dashboard", lambda: urllib.request.urlopen(
            f"http://127.0.0.1:{p.http_port}/", timeout=2).read(), 30)
        assert b"<html" in page.lower()
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{p.http_port}/api/server", timeout=2)
        assert e.value.code == 401
        server_info = p.wait_fleet_started(3, 60)
        assert server_info["fleet"]["expected"] == 3
        metrics = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{p.http_port}/metrics",
            headers={"Authorization": f"Bearer {p.token}"}), timeout=2).read().decode()
        assert "loadmon_clients{" in metrics

        code = p.wait_server(60)
        elapsed = time.monotonic() - t0
        server_log = p.logs("server")
        assert code == 0, server_log
        for w in p.containers("worker"):
            assert run(["docker", "inspect", "-f", "{{.State.ExitCode}}", w]).stdout.strip() \
                == "0", p.logs("worker")
        report = p.report()
        statuses = [c["status"] for c in report["clients"]]
        assert statuses == ["PASS"] * 3, report["clients"]
        # The barrier: all three started within 0.5 s.
        starts = [ts(c["start_time"]) for c in report["clients"]]
        spread = max(starts) - min(starts)
        assert spread < 0.5, starts
        total = report["total"]
        assert total["expected_clients"] == 3 and total["started_clients"] == 3
        assert min(starts) - ts(total["common_start"]) < 0.5
        assert total["series"], total
        check_plan_honoured(report, chunk_mb=1, file_mb=4)
        # Each worker wrote its own 4 MiB files and kept the newest 2 (on its own volume).
        for w in p.containers("worker"):
            files = {n: s for n, (s, _) in docker_cp_bytes(w, "/data").items()}
            assert len(files) == 2, files
            assert all(s == 4 * MIB for s in files.values()), files
            assert all(re.fullmatch(r"data/client_\d+_\d+_[\d._-]+", n) for n in files), files
        # The text report in the server's log: the seed's block and the fleet line.
        assert server_log.count("Test status:   PASS") == 3, server_log
        assert "Fleet: 3 of 3 expected client(s) started together" in server_log
        print(f"\ncompose: 3 PASS, start spread {spread * 1000:.1f} ms, "
              f"{total['throughput_mb_s']:.0f} MB/s, {elapsed:.1f} s up to the report")


def test_compose_fleet_kill_and_disconnect(image: str) -> None:
    with compose_project(image, LOADMON_WORKERS="3", LOADMON_RUN_TIME="12",
                         LOADMON_START_TIMEOUT="60", LOADMON_HEARTBEAT_TIMEOUT="4",
                         LOADMON_HEARTBEAT_PERIOD="1", **SMALL_PLAN) as p:
        t0 = time.monotonic()
        p.compose("up", "-d")
        killed, cut, kept = p.containers("worker")
        ips = {c: container_ip(c) for c in (killed, cut, kept)}
        p.wait_fleet_started(3, 60)

        def running() -> bool:
            clients = get_json(p.http_port, "/api/clients", p.token)
            clients = clients.get("clients", clients) if isinstance(clients, dict) else clients
            return len(clients) == 3 and all(
                c["status"] == "RUNNING" and c["heartbeats"] >= 1 for c in clients)

        poll("three running clients with a heartbeat", running, 30)
        run(["docker", "kill", killed])
        network = f"{p.name}_fleet"
        run(["docker", "network", "disconnect", network, cut])
        t_cut = time.monotonic()

        code = p.wait_server(90)
        elapsed = time.monotonic() - t0
        server_log = p.logs("server")
        assert code == 3, server_log
        report = p.report()
        clients = report["clients"]
        assert len(clients) == 3
        a, t, ok = (client_by_peer(clients, ips[c]) for c in (killed, cut, kept))
        assert a["status"] == "ABORTED", a
        assert t["status"] == "TIMED OUT", t
        assert ok["status"] == "PASS", ok
        assert run(["docker", "inspect", "-f", "{{.State.ExitCode}}", kept]).stdout.strip() \
            == "0"
        starts = [ts(c["start_time"]) for c in clients]
        assert max(starts) - min(starts) < 0.5, starts
        check_plan_honoured(report, chunk_mb=1, file_mb=4)
        assert server_log.count("Test status:   PASS") == 1
        print(f"\ncompose faults: ABORTED ({a['reason']}), TIMED OUT ({t['reason']}), PASS; "
              f"server exit 3 {time.monotonic() - t_cut:.1f} s after the cut, "
              f"{elapsed:.1f} s in all")


def test_compose_failed_threshold_exits_4_through_exit_code_from(image: str,
                                                                  tmp_path: Path) -> None:
    """A CI step: the compose file plus an override that adds thresholds to the server's
    command, run with `docker-compose up --exit-code-from server`. A rule no disk meets fails
    over its window, --abort-on-fail stops the fleet long before its 60 s run time, and
    docker-compose exits with the server's documented code 4 (thresholds failed)."""
    rule = "client.mb_s >= 100000 over 2s"
    holds = "fleet.bytes > 0"
    with compose_project(image, LOADMON_WORKERS="2", LOADMON_RUN_TIME="60",
                         LOADMON_START_TIMEOUT="60", **SMALL_PLAN) as p:
        command = yaml.safe_load(p.compose("config").stdout)["services"]["server"]["command"]
        override = tmp_path / "thresholds.yaml"
        override.write_text(yaml.safe_dump({"services": {"server": {"command": [
            *command, f"--threshold={rule}", f"--threshold={holds}", "--abort-on-fail",
            "--report-junit=/reports/junit.xml"]}}}))
        p.extra_files.append(override)
        t0 = time.monotonic()
        up = p.compose("up", "--no-color", "--exit-code-from", "server", check=False,
                       timeout=240)
        elapsed = time.monotonic() - t0
        said = f"stdout:\n{up.stdout}\nstderr:\n{up.stderr}"
        assert up.returncode == 4, said
        assert elapsed < 60, f"not aborted: {elapsed:.1f} s\n{said}"
        (server,) = p.containers("server")
        assert run(["docker", "inspect", "-f", "{{.State.ExitCode}}", server]).stdout.strip() \
            == "4"
        # The server's text report (in the attached output): the headline says why it ended.
        assert "Thresholds failed: the run was aborted!" in up.stdout, said
        assert "All test clients completed!" not in up.stdout, said
        report = p.report()
        verdict = report["verdict"]
        assert verdict["is_final"] is True and verdict["passed"] is False, verdict
        reason = verdict["aborted_by"]
        assert reason.startswith(f"threshold failed: {rule} (client "), reason
        outcomes = {r["rule"]: r["outcome"] for r in verdict["rules"]}
        assert outcomes == {rule: "FAIL", holds: "PASS"}, verdict
        clients = report["clients"]
        assert len(clients) == 2, clients
        for c in clients:
            assert (c["status"], c["reason"]) == ("ABORTED", reason), c
        # The JUnit XML beside the reports: the failing rule as a <failure>.
        files = docker_cp_bytes(server, "/reports")
        junit = files["reports/junit.xml"][1].decode()
        assert junit.startswith("<?xml") and "<failure" in junit, junit
        assert "client.mb_s &gt;= 100000 over 2s" in junit, junit
        print(f"\ncompose thresholds: exit 4 after {elapsed:.1f} s ({reason})")


# ---------------------------------------------------------------------------------------------
# Docker Swarm


@contextlib.contextmanager
def single_node_swarm() -> Iterator[None]:
    """A single-node swarm on loopback for the test; left (and its gwbridge removed) after.

    If this Docker is already in a swarm, that swarm is used and left alone."""
    state = run(["docker", "info", "-f", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    if state == "active":
        yield
        return
    assert state == "inactive", f"this Docker's swarm is {state!r}: neither in one nor free"
    had_gwbridge = bool(run(["docker", "network", "ls", "-q", "--filter",
                             "name=^docker_gwbridge$"]).stdout.strip())
    try:
        run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1",
             "--listen-addr", "127.0.0.1:2377"], timeout=120)
        yield
    finally:
        run(["docker", "swarm", "leave", "--force"], check=False, timeout=120)
        if not had_gwbridge:
            poll("docker_gwbridge removed", lambda: run(
                ["docker", "network", "rm", "docker_gwbridge"], check=False).returncode == 0
                 or not run(["docker", "network", "ls", "-q", "--filter",
                             "name=^docker_gwbridge$"]).stdout.strip(), 30, every=1)


def test_swarm_stack_passes(image: str) -> None:
    stack = f"lmtest{secrets.token_hex(4)}"
    token = secrets.token_hex(16)
    env = clean_env(LOADMON_IMAGE=image, LOADMON_TOKEN=token, LOADMON_WORKERS="3",
                    LOADMON_RUN_TIME="5", LOADMON_START_TIMEOUT="90",
                    LOADMON_HTTP_PORT=str(free_port()), **SMALL_PLAN)
    label = f"com.docker.stack.namespace={stack}"
    volumes: set[str] = set()
    with single_node_swarm():
        try:
            t0 = time.monotonic()
            out = run(["docker", "stack", "deploy", "-c", str(COMPOSE), stack], env=env)
            print(f"\nstack deploy said: {out.stderr.strip() or out.stdout.strip()}")

            def tasks() -> dict[str, list[str]]:
                rows = run(["docker", "stack", "ps", stack, "--no-trunc",
                            "--format", "{{.Name}}|{{.CurrentState}}|{{.Error}}"]).stdout
                by: dict[str, list[str]] = {}
                for line in rows.splitlines():
                    name, state, _ = line.split("|", 2)
                    by.setdefault(name.split(".")[0], []).append(state)
                return by

            def server_done() -> bool:
                states = tasks().get(f"{stack}_server", [])
                return bool(states) and all(s.split()[0] in ("Complete", "Failed", "Rejected")
                                            for s in states)

            poll("the stack's server task to finish", server_done, 120, every=1)
            elapsed = time.monotonic() - t0
            states = tasks()
            ids = labelled("container", label)
            for c in ids:
                volumes.update(run(["docker", "inspect", "-f",
                                    "{{range .Mounts}}{{.Name}} {{end}}", c]).stdout.split())
            (server,) = run(["docker", "ps", "-aq", "--filter", f"label={label}", "--filter",
                             f"label=com.docker.swarm.service.name={stack}_server"]).stdout.split()
            logs = run(["docker", "logs", server]).stdout
            assert [s.split()[0] for s in states[f"{stack}_server"]] == ["Complete"], \
                (states, logs)
            assert sorted(s.split()[0] for s in states[f"{stack}_worker"]) == ["Complete"] * 3, \
                states
            files = docker_cp_bytes(server, "/reports")
            report = json.loads(files["reports/report.json"][1])
            assert [c["status"] for c in report["clients"]] == ["PASS"] * 3, report["clients"]
            starts = [ts(c["start_time"]) for c in report["clients"]]
            assert max(starts) - min(starts) < 0.5, starts
            check_plan_honoured(report, chunk_mb=1, file_mb=4)
            assert "Fleet: 3 of 3 expected client(s) started together" in logs
            print(f"swarm: 3 PASS, start spread {(max(starts) - min(starts)) * 1000:.1f} ms, "
                  f"{elapsed:.1f} s from deploy to the server's end")
        finally:
            run(["docker", "stack", "rm", stack], check=False)
            poll("the stack's containers to go", lambda: not labelled("container", label),
                 60, every=1)
            poll("the stack's networks to go", lambda: not labelled("network", label),
                 60, every=1)
            volumes.update(labelled("volume", label))
            for v in volumes:
                run(["docker", "volume", "rm", "-f", v], check=False)


def test_docker_is_clean_of_test_objects() -> None:
    """Runs last (file order): nothing named lmtest*/loadmon:test-* is left."""
    names = run(["docker", "ps", "-a", "--format", "{{.Names}}"]).stdout.split()
    assert not [n for n in names if n.startswith(("lmtest", "loadmon-test-"))], names
    nets = run(["docker", "network", "ls", "--format", "{{.Name}}"]).stdout.split()
    assert not [n for n in nets if n.startswith("lmtest")], nets
    vols = run(["docker", "volume", "ls", "--format", "{{.Name}}"]).stdout.split()
    assert not [v for v in vols if v.startswith("lmtest")], vols
