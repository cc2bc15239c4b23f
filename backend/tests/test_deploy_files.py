"""The Dockerfile, the compose file, nginx's config and the workflows, checked without a Docker
engine: hadolint, and their paths, ports and variable names against the code's settings."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from app.core.config import ServerSettings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
NGINX = (ROOT / "deploy" / "nginx.conf").read_text()
DOCUMENTED = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
# Read by other programs (the images' own variables, the Prometheus client).
FOREIGN = {"POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "PROMETHEUS_MULTIPROC_DIR"}
BASE_IMAGE_VARS = {"PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}


def _final_stage() -> str:
    return DOCKERFILE.split("\nFROM ")[-1]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(
        Path(__file__).resolve().parents[2] / ".venv/bin/hadolint"
    )
    if not Path(hadolint).exists():
        pytest.fail("hadolint is a dev dependency (make test installs it from backend/uv.lock)")
    result = subprocess.run(
        [hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_non_root_healthchecked_and_built_from_real_paths() -> None:
    stages = re.findall(r"^FROM (\S+)(?: AS (\w+))?", DOCKERFILE, re.M)
    assert [name for _, name in stages[:2]] == ["spa", "deps"], stages
    assert len(stages) == 3
    final = _final_stage()
    assert "npm" not in final.split("CMD")[0].replace("--from=spa", ""), (
        "no Node in the runtime image"
    )
    assert not re.search(r"apt-get install|build-essential|gcc", final), (
        "no compilers in the final image"
    )
    user = re.search(r"^USER (\d+):(\d+)$", final, re.M)
    assert user is not None, "runs as a numeric user"
    assert user.group(1) != "0", "not root"
    assert re.search(r"^HEALTHCHECK .*\n?.*/readyz", final, re.M)
    assert re.search(r"^VOLUME \[\"/data\"\]", final, re.M)
    assert "DATA_DIR=/data" in final
    assert f"EXPOSE {ServerSettings.model_fields['port'].default}" in final
    assert 'CMD ["python", "-m", "app", "serve"]' in final
    assert "STOPSIGNAL SIGTERM" in final
    for source in re.findall(r"^COPY (?!--from)(?:--\S+ )*(\S+)(?: \S+)* \S+$", DOCKERFILE, re.M):
        assert (ROOT / source).exists(), f"COPY {source}: no such path in the repository"
    for name in re.findall(r"^\s+([A-Z][A-Z0-9_]+)=", DOCKERFILE, re.M):
        assert name in DOCUMENTED | BASE_IMAGE_VARS, f"ENV {name} is not a setting"
    assert "node_modules" in (ROOT / ".dockerignore").read_text()


def _environment(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def test_compose_runs_one_app_by_default_and_a_scaled_stack_on_demand() -> None:
    services = COMPOSE["services"]
    default = [name for name, s in services.items() if not s.get("profiles")]
    assert default == ["app"], "only the single-port app runs without a profile"
    app = services["app"]
    assert app["ports"] == ["${PORT:-8000}:8000"]
    assert app["volumes"] == ["data:/data"]
    scale = {name for name, s in services.items() if "scale" in (s.get("profiles") or [])}
    assert scale == {"app-scaled", "proxy", "postgres", "redis"}
    scaled = services["app-scaled"]
    assert scaled["deploy"]["replicas"] >= 2
    env = _environment(scaled)
    assert env["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert env["REDIS_URL"].startswith("redis://redis:")
    # The app believes X-Forwarded-For from exactly the proxy's fixed address, on a network whose
    # range holds it.
    proxy_net = services["proxy"]["networks"]["backplane"]
    subnet = COMPOSE["networks"]["backplane"]["ipam"]["config"][0]["subnet"]
    assert env["TRUSTED_PROXIES"] == proxy_net["ipv4_address"]
    assert ipaddress.ip_address(proxy_net["ipv4_address"]) in ipaddress.ip_network(subnet)
    for name in ("app-scaled", "postgres", "redis"):
        assert services[name]["networks"] == ["backplane"], name
    assert scaled["depends_on"] == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    for service in services.values():
        for name in _environment(service):
            assert name in DOCUMENTED | FOREIGN, f"compose sets {name}, which nothing reads"
    grace = float(env["SHUTDOWN_DELAY_SECONDS"]) + float(env["SHUTDOWN_GRACE_SECONDS"])
    assert float(scaled["stop_grace_period"].rstrip("s")) > grace, (
        "docker waits for the app's drain"
    )
    assert set(COMPOSE["volumes"]) == {"data", "data-scaled", "postgres"}


def test_nginx_is_configured_for_event_streams_and_client_addresses() -> None:
    assert "proxy_buffering off;" in NGINX
    # The app's own connection bounds, applied by nginx too (same defaults).
    defaults = ServerSettings.model_fields
    timeouts = {
        "client_header_timeout": defaults["header_timeout_seconds"].default,
        "client_body_timeout": defaults["body_timeout_seconds"].default,
        "keepalive_timeout": defaults["keepalive_timeout_seconds"].default,
    }
    for directive, seconds in timeouts.items():
        assert re.search(rf"^\s*{directive} {int(seconds)}s;", NGINX, re.M), directive
    buffers = re.search(r"large_client_header_buffers (\d+) (\d+)k;", NGINX)
    assert buffers is not None
    assert int(buffers.group(2)) * 1024 <= defaults["max_header_bytes"].default
    assert "proxy_http_version 1.1;" in NGINX
    timeout = re.search(r"proxy_read_timeout (\d+)s;", NGINX)
    assert timeout is not None
    assert int(timeout.group(1)) >= 600
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in NGINX
    upstream = re.search(r"server ([\w-]+):(\d+)", NGINX)
    assert upstream is not None
    assert upstream.group(1) in COMPOSE["services"]
    assert upstream.group(2) == "8000"
    listen = re.search(r"listen (\d+);", NGINX)
    assert listen is not None
    assert COMPOSE["services"]["proxy"]["ports"] == [f"${{PROXY_PORT:-8080}}:{listen.group(1)}"]


def test_workflows_run_make_test_with_services_and_build_both_architectures() -> None:
    ci = yaml.safe_load((ROOT / ".github/workflows/ci.yml").read_text())
    job = ci["jobs"]["test"]
    assert {"postgres", "redis"} <= set(job["services"])
    assert any("make test" in str(step.get("run", "")) for step in job["steps"])
    docker = yaml.safe_load((ROOT / ".github/workflows/docker.yml").read_text())
    build = next(
        s
        for s in docker["jobs"]["image"]["steps"]
        if str(s.get("uses", "")).startswith("docker/build-push-action")
    )
    assert build["with"]["platforms"] == "linux/amd64,linux/arm64"
    assert build["with"]["push"] == "${{ github.event_name != 'pull_request' }}"
    triggers = docker.get("on") or docker.get(True)  # YAML 1.1 reads a bare `on` as true
    assert triggers["push"]["tags"] == ["v*"]
    assert "pull_request" in triggers


LOCK = tomllib.loads((ROOT / "backend/uv.lock").read_text())
PYPROJECT = tomllib.loads((ROOT / "backend/pyproject.toml").read_text())


def _name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_every_python_dependency_is_locked_with_hashes() -> None:
    """uv.lock pins what pyproject.toml asks for (runtime and dev), one version per package, and
    every file it may install carries a hash."""
    root = next(p for p in LOCK["package"] if p["source"].get("virtual") == ".")
    locked_runtime = {_name(d["name"]) for d in root["metadata"]["requires-dist"]}
    locked_dev = {_name(d["name"]) for d in root["metadata"]["requires-dev"]["dev"]}
    assert locked_runtime == {_name(r) for r in PYPROJECT["project"]["dependencies"]}
    assert locked_dev == {_name(r) for r in PYPROJECT["dependency-groups"]["dev"]}
    for package in LOCK["package"]:
        if package is root:
            continue
        files = [*package.get("wheels", []), *([package["sdist"]] if "sdist" in package else [])]
        assert files, f"{package['name']}: no file in the lock"
        for file in files:
            assert re.fullmatch(r"sha256:[0-9a-f]{64}", file.get("hash", "")), package["name"]
    bootstrap = (ROOT / "backend/bootstrap/requirements-uv.txt").read_text()
    assert re.search(r"^uv==[\d.]+ \\$", bootstrap, re.M)
    assert "--hash=sha256:" in bootstrap


def test_every_install_path_uses_the_locks() -> None:
    makefile = (ROOT / "Makefile").read_text()
    syncs = re.findall(r"\$\(UV\) sync (.*)", makefile)
    assert len(syncs) == 2, syncs  # runtime only (make run), and with the dev group (make test)
    assert all("--locked" in flags for flags in syncs)
    assert sum("--no-dev" in flags for flags in syncs) == 1
    assert "--require-hashes -r backend/bootstrap/requirements-uv.txt" in makefile
    assert not re.search(r"pip install (?!--quiet --require-hashes)", makefile)
    assert re.search(r"uv sync --locked --no-dev", DOCKERFILE)
    assert "--require-hashes -r bootstrap/requirements-uv.txt" in DOCKERFILE
    # npm: always the lock file, never a resolution.
    for text in (makefile, DOCKERFILE):
        assert "npm ci" in text
        assert not re.search(r"npm (install|i)\b", text)


def test_dependabot_watches_every_ecosystem() -> None:
    config = yaml.safe_load((ROOT / ".github/dependabot.yml").read_text())
    watched = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert watched == {
        ("uv", "/backend"),
        ("pip", "/backend/bootstrap"),
        ("npm", "/frontend"),
        ("docker", "/"),
        ("github-actions", "/"),
    }
