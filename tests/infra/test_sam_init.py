"""`sam init --location` on this repository, through the real SAM CLI.

The template is this repository itself: ``cookiecutter.json``, a placeholder project folder and
``hooks/post_gen_project.py``, which copies the live files into the new project and writes the
answers into them. One render with answers unlike this project's (a long name with a dash and
spaces, another region, a cross-account writer role) is checked for:

- its files: this repository's, minus the template's own machinery, unchanged but for the lines
  that name this project, and with no such name left;
- the answers, in samconfig.toml, the template, the workflow, the bootstrap template, the docs;
- its own lint, types and tests, run with this repository's .venv, and its `make invoke`.

A zip and a git URL of the repository render the same files, and answers the stacks or the
template cannot take stop `sam init` with nothing left behind.

The SAM CLI is $TEST_SAM_CLI, else the Makefile's .venv-sam (built here when missing).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.emulator import sam_template

ROOT = Path(__file__).resolve().parents[2]

ARN = "arn:aws:iam::210987654321:role/exports-writer"
ANSWERS = {
    "project_name": "Ledger Exports-EU Central",
    "service_name": "ledger-exports",
    "aws_region": "ap-southeast-2",
    "writer_role_arn": ARN,
    "jwt_issuer": "https://ledger-eu.eu.auth0.com/",
    "jwt_audience": "https://exports.ledger.example.com",
}
SLUG = "ledger-exports-eu-central"  # 25 characters, the longest the stack names leave room for
NAMESPACE = "LedgerExports"  # the service name in CamelCase

# The template's own machinery, and this checkout's benchmark figures: they stay here.
TEMPLATE_ONLY = re.compile(
    r"cookiecutter\.json|hooks/.*|\{\{cookiecutter\.[^/]*\}\}/.*|tests/infra/test_sam_init\.py"
    r"|bench/results/.*"
)
# This project's names. The example domain (items table, exports bucket, functions) stays.
PROJECT_NAMES = re.compile(
    r"items[-_ ]service|ItemsService|eu-west-1|POWERTOOLS_SERVICE_NAME\W+items\b"
    r"|\bitems  # = Globals POWERTOOLS_SERVICE_NAME",  # the table export alarm's dimension
    re.IGNORECASE,
)
# What only the template needs; a generated project says nothing of it.
TEMPLATE_WORDS = re.compile(r"cookiecutter|sam init --location|new-service")

# What the generated project runs of its own suite: every tier but the integration one, whose
# outcome the answers do not decide beyond the region, plus the two integration files that run every
# event (in process and in worker processes) and so see the region and the names. This
# repository's own suite runs the rest on the same code. The real SAM tier is left to this
# repository's run too: it needs this machine's Docker engine and stand-in image, and SAM in a
# rendered project looked for its emulation image in the registry instead (an open question, see
# the README's Test section). SAM_INIT_FULL_SUITE=1 runs them all.
RERUN = (
    "tests/unit",
    "tests/infra",
    # The scenarios and the local API carry the rendered names end to end; the benchmark smokes,
    # the contract fuzzing and the real SAM tier add minutes and no name (SAM_INIT_FULL_SUITE=1
    # runs everything).
    "tests/e2e/test_stack.py",
    "tests/e2e/test_local_api.py",
    "tests/integration/test_events.py",
    "tests/integration/test_local_invoke.py",
    # Of the infra tier, not the scanners (checkov's and cfn-lint's verdicts do not depend on names;
    # test_template.py lints the rendered template and each translation) nor the deployed-run
    # collection check (three pytest collections, no name): about a minute on two cores.
    "--ignore=tests/infra/test_scanners.py",
    "--deselect=tests/infra/test_delivery.py::"
    "test_a_deployed_run_collects_the_scenarios_only_and_smoke_only_the_read_only_ones",
)


def _environment(**extra: str) -> dict[str, str]:
    """A shell's environment: nothing of this test run's AWS, make or virtualenv settings."""
    dropped = ("AWS_", "MAKE", "MFLAGS", "COOKIECUTTER", "PYTEST_")
    kept = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(dropped) and name not in {"ENV", "PYTHONPATH", "VIRTUAL_ENV"}
    }
    return kept | {"SAM_CLI_TELEMETRY": "0"} | extra


def _call(
    command: list[str | Path], cwd: Path, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run it in a shell's environment."""
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=_environment(**extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _run(
    command: list[str | Path], cwd: Path, timeout: float = 300, **extra: str
) -> subprocess.CompletedProcess[str]:
    """Run it in a shell's environment; fail with its output unless it succeeds."""
    result = _call(command, cwd, timeout, **extra)
    output = f"{result.stdout}\n{result.stderr}"[-6000:]
    assert result.returncode == 0, f"{' '.join(map(str, command))} in {cwd}:\n{output}"
    return result


def _live_files() -> set[str]:
    """This repository as it is now: the files git tracks, as they are in the working tree."""
    listed = _run(["git", "ls-files", "-z", "--cached"], ROOT)
    return {name for name in listed.stdout.split("\0") if name and (ROOT / name).exists()}


def _text(path: Path) -> str | None:
    try:
        return None if path.is_symlink() else path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


@pytest.fixture(scope="module")
def sam() -> Path:
    configured = os.environ.get("TEST_SAM_CLI")
    if configured:
        assert Path(configured).is_file(), f"TEST_SAM_CLI={configured} does not exist"
        return Path(configured)
    local = ROOT / ".venv-sam" / "bin" / "sam"
    if not local.exists():  # what `make validate` and `make build` would build: the pinned SAM CLI
        make = shutil.which("make")
        assert make is not None, "make is not installed: set TEST_SAM_CLI=/path/to/sam"
        _run([make, "--no-print-directory", ".venv-sam/.installed"], ROOT, timeout=900)
    return local


@dataclass(frozen=True)
class Render:
    project: Path
    files: set[str]  # as sam init left them, before anything ran in the project
    output: str


def _sam_init(
    sam: Path, location: str | Path, answers: dict[str, str], where: Path
) -> subprocess.CompletedProcess[str]:
    """`sam init --location` without prompts, cookiecutter's clones and replays kept in `where`."""
    where.mkdir(exist_ok=True)
    config = where / "cookiecutter.yaml"
    config.write_text(f"cookiecutters_dir: {where / 'clones'}\nreplay_dir: {where / 'replay'}\n")
    command: list[str | Path] = [sam, "init", "--location", location, "--no-input"]
    command += ["--output-dir", where / "out", "--extra-context", json.dumps(answers)]
    return _call(command, where, COOKIECUTTER_CONFIG=str(config))


def _render(sam: Path, location: str | Path, answers: dict[str, str], where: Path) -> Render:
    result = _sam_init(sam, location, answers, where)
    assert result.returncode == 0, f"sam init --location {location}:\n{result.stderr[-6000:]}"
    (project,) = (where / "out").iterdir()
    files = {p.relative_to(project).as_posix() for p in project.rglob("*") if not p.is_dir()}
    return Render(project, files, result.stdout + result.stderr)


@pytest.fixture(scope="module")
def render(sam: Path, tmp_path_factory: pytest.TempPathFactory) -> Render:
    return _render(sam, ROOT, ANSWERS, tmp_path_factory.mktemp("sam-init"))


@pytest.fixture(scope="module")
def project(render: Render) -> Path:
    """The rendered project with this repository's virtual environments linked in (not rebuilt)."""
    for venv in ROOT.glob(".venv*"):
        if venv.is_dir():
            (render.project / venv.name).symlink_to(venv, target_is_directory=True)
    return render.project


# --- The files ------------------------------------------------------------------------------------


def test_the_project_is_this_repository_without_the_template(render: Render) -> None:
    expected = {name for name in _live_files() if not TEMPLATE_ONLY.fullmatch(name)}
    assert render.project.name == SLUG
    assert sorted(render.files - expected) == []
    assert sorted(expected - render.files) == []


def test_files_not_naming_this_project_are_copied_as_they_are(render: Render) -> None:
    """Contents, modes and times: make sees the requirement files as old as in this checkout."""
    differ = []
    for name in sorted(render.files):
        source, copy = (ROOT / name).lstat(), (render.project / name).lstat()
        text = _text(ROOT / name)
        if text is not None and (PROJECT_NAMES.search(text) or TEMPLATE_WORDS.search(text)):
            continue
        if (ROOT / name).read_bytes() != (render.project / name).read_bytes():
            differ.append(f"{name}: contents")
        if (source.st_mode, source.st_mtime_ns) != (copy.st_mode, copy.st_mtime_ns):
            differ.append(f"{name}: mode or time")
    assert differ == []


def test_files_naming_this_project_change_only_where_they_do(render: Render) -> None:
    """Every changed block names this project; only the template's own sections disappear."""
    stray = []
    for name in sorted(render.files):
        before, after = _text(ROOT / name), _text(render.project / name)
        if before is None or before == after:
            continue
        assert after is not None, name
        old, new = before.splitlines(), after.splitlines()
        matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
        for tag, i1, i2, j1, j2 in matcher.get_opcodes():
            removed = "\n".join(old[i1:i2])
            if tag == "replace" and i2 - i1 == j2 - j1 and PROJECT_NAMES.search(removed):
                continue
            if tag == "replace" and name == "samconfig.toml" and "parameter_overrides" in removed:
                continue
            if tag == "delete" and TEMPLATE_WORDS.search(removed):
                continue
            if tag != "equal":
                stray.append(f"{name}:{i1 + 1}: {tag} {old[i1:i2]} -> {new[j1:j2]}")
    assert stray == []


def test_no_name_of_this_project_or_of_the_template_is_left(render: Render) -> None:
    found = [
        f"{name}:{number}: {line.strip()}"
        for name in sorted(render.files)
        for number, line in enumerate((_text(render.project / name) or "").splitlines(), 1)
        if PROJECT_NAMES.search(line) or TEMPLATE_WORDS.search(line)
    ]
    assert found == []


# --- The answers ----------------------------------------------------------------------------------


def test_the_stacks_are_named_after_the_project_in_its_region(render: Render) -> None:
    samconfig = tomllib.loads((render.project / "samconfig.toml").read_text())
    template = sam_template.load(render.project / "template.yaml")
    for environment, stage in (("default", "dev"), ("prod", "prod")):
        config = samconfig[environment]
        assert config["global"]["parameters"]["stack_name"] == f"{SLUG}-{stage}"
        assert config["global"]["parameters"]["region"] == ANSWERS["aws_region"]
        assert config["deploy"]["parameters"]["s3_prefix"] == f"{SLUG}-{stage}"
        overrides = config["deploy"]["parameters"]["parameter_overrides"].split()
        assert overrides[0] == f"Stage={stage}"
        assert f"RolesBoundaryPolicy={SLUG}-{stage}-roles-boundary" in overrides
        # The cross-account writer and the team's token issuer, dev and prod.
        assert overrides[-3:] == [
            f"WriterRoleArn={ARN}",
            f"JwtIssuer={ANSWERS['jwt_issuer']}",
            f"JwtAudience={ANSWERS['jwt_audience']}",
        ]
        parameters = template["Parameters"]
        for name, value in (override.split("=", 1) for override in overrides):
            assert re.fullmatch(parameters[name].get("AllowedPattern", ".*"), value), name

    bootstrap = sam_template.load(render.project / "deploy" / "bootstrap.yaml")
    assert bootstrap["Parameters"]["AppStackName"]["Default"] == f"{SLUG}-dev"
    assert ANSWERS["project_name"] in bootstrap["Description"]
    workflow = (render.project / ".github" / "workflows" / "pipeline.yml").read_text()
    assert f"AWS_REGION: ${{{{ vars.AWS_REGION || '{ANSWERS['aws_region']}' }}}}" in workflow
    makefile = (render.project / "Makefile").read_text()
    assert f"export AWS_DEFAULT_REGION ?= {ANSWERS['aws_region']}\n" in makefile


def test_the_functions_log_and_measure_as_the_service(render: Render) -> None:
    template = sam_template.load(render.project / "template.yaml")
    assert template["Description"].startswith(f"{ANSWERS['project_name']}: ")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == ANSWERS["service_name"]
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    assert ARN not in (render.project / "template.yaml").read_text()  # samconfig passes it


def test_the_project_calls_itself_by_its_name(render: Render) -> None:
    pyproject = tomllib.loads((render.project / "pyproject.toml").read_text())
    assert pyproject["project"]["name"] == SLUG
    readme = (render.project / "README.md").read_text()
    assert readme.startswith(f"# {ANSWERS['project_name']}: ")
    assert f"--stack-name {SLUG}-dev" in readme
    assert f"{SLUG}-dev and {SLUG}-prod in {ANSWERS['aws_region']}" in render.output
    assert f"callers  tokens from {ANSWERS['jwt_issuer']} for" in render.output


# --- The project works ----------------------------------------------------------------------------


def test_the_project_passes_its_own_lint_types_and_tests(project: Path) -> None:
    bin_ = project / ".venv" / "bin"
    _run([bin_ / "ruff", "check", "."], project)
    _run([bin_ / "ruff", "format", "--check", "."], project)
    _run([bin_ / "mypy"], project)
    selected = [] if os.environ.get("SAM_INIT_FULL_SUITE") else RERUN
    tests = _run([bin_ / "python", "-m", "pytest", "-q", "-x", *selected], project, timeout=600)
    assert " passed" in tests.stdout


def test_make_invoke_works_in_the_project(project: Path) -> None:
    make = shutil.which("make")
    assert make is not None, "make is not installed"
    # Copies keep their times, so the linked .venv is exactly as up to date as it is here.
    up_to_date = [
        subprocess.run(
            [make, "--question", ".venv/bin/.installed"], cwd=where, env=_environment(), check=False
        ).returncode
        for where in (ROOT, project)
    ]
    assert up_to_date[0] == up_to_date[1]
    invoked = _run([make, "--no-print-directory", "-o", ".venv/bin/.installed", "invoke"], project)
    assert json.loads(invoked.stdout.splitlines()[-1])["statusCode"] == 200
    assert f'"Namespace":"{NAMESPACE}"' in invoked.stderr  # the function's metrics and logs
    assert f'"service":"{ANSWERS["service_name"]}"' in invoked.stderr


# --- Other locations, other answers ---------------------------------------------------------------


def test_a_zip_and_a_git_url_of_the_repository_render_the_same_files(
    sam: Path, render: Render, tmp_path: Path
) -> None:
    live = sorted(_live_files())
    archive = tmp_path / "items-template.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("items-template/", "")  # cookiecutter wants the folder as the first entry
        for name in live:
            bundle.write(ROOT / name, f"items-template/{name}")
        # What a zip of a working folder may hold: none of it travels.
        for junk in (".aws-sam/build/template.yaml", "src/app/__pycache__/x.pyc", ".venv/bin/x"):
            bundle.writestr(f"items-template/{junk}", "")
    zipped = _render(sam, archive, {"project_name": "Zipped"}, tmp_path / "zip")
    assert zipped.files == render.files

    repository = tmp_path / "repository"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(tmp_path / "unzipped")
    (tmp_path / "unzipped" / "items-template").rename(repository)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com"]
    _run([*git, "init", "--quiet"], repository)
    _run([*git, "add", "--all"], repository)
    _run([*git, "commit", "--quiet", "--message", "template"], repository)
    cloned = _render(sam, f"file://{repository}", {"project_name": "Cloned"}, tmp_path / "git")
    assert cloned.files == render.files


def test_answers_the_template_cannot_take_stop_sam_init_and_leave_nothing(
    sam: Path, tmp_path: Path
) -> None:
    answers = {
        "project_name": "Very Long Project Name For Stacks",  # its slug leaves no room for -prod
        "service_name": "off",  # YAML would read a boolean
        "aws_region": "cn-north-1",  # another partition: the events' ARNs say arn:aws
        "writer_role_arn": "exports-writer",  # a name, not an ARN
        "jwt_issuer": "http://issuer.example.com/",  # API Gateway fetches keys over https only
        "jwt_audience": "",  # an issuer's every token, for any application, would do
    }
    result = _sam_init(sam, ROOT, answers, tmp_path)
    assert result.returncode != 0
    problems = [line for line in result.stderr.splitlines() if line.startswith("sam init: ")]
    assert [re.sub(r" '.*", "", line.removeprefix("sam init: ")) for line in problems] == [
        "project slug",
        "service name",
        "AWS region",
        "writer role",
        "JWT issuer",
        "JWT audience",
    ]
    assert list((tmp_path / "out").iterdir()) == []
