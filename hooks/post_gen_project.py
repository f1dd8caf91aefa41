# cookiecutter renders this file with Jinja: all of it is raw text but the answers line. {% raw %}
"""Fill the project `sam init --location` generated with this repository's live files.

cookiecutter renders this file with the answers (_RENDERED_ANSWERS), then runs it with the SAM
CLI's Python in the new project's folder, which holds only the placeholder README of
``{{cookiecutter.__project_slug}}/``. It copies the repository the template was read from (a local
checkout, a clone of a git URL, an unzipped archive) into that folder, leaving out what makes the
repository a template and what belongs to one checkout, then writes the answers into the copy
through REWRITES, the one list of what is project-specific. A failure stops ``sam init``, and
cookiecutter removes the half-made project.

Standard library only, Python 3.11+: it runs in whatever Python the SAM CLI was installed with.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# {% endraw %}
_RENDERED_ANSWERS = r"""{{ cookiecutter | tojson }}"""
# {% raw %}

# --- What travels ---------------------------------------------------------------------------------

# Never copied, whatever git says: what makes this repository a template, and what belongs to one
# checkout (git ignores most of those already; an unzipped archive has no git to ask). Globs matched
# against a path relative to the repository root and against each of its leading folders.
NOT_COPIED = (
    "cookiecutter.json",
    "hooks",
    "{{cookiecutter.*}}",  # the folder cookiecutter renders the project from
    "tests/infra/test_sam_init.py",  # renders this template: a generated project is not one
    "bench/results",  # measurements of this checkout, not of the new service
    ".git",
    ".venv",
    ".venv-*",
    ".aws-sam",
    ".aws-local",
    "mutants",  # make mutation's working copy
    "*.pyc",
)
NOT_COPIED_ANYWHERE = {
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    ".DS_Store",
}

PLACEHOLDER = "README.md"  # what cookiecutter rendered into the project folder before this hook


def excluded(relative: str) -> bool:
    parts = relative.split("/")
    if NOT_COPIED_ANYWHERE.intersection(parts):
        return True
    leading = ("/".join(parts[:end]) for end in range(1, len(parts) + 1))
    return any(fnmatch.fnmatchcase(path, pattern) for path in leading for pattern in NOT_COPIED)


def _git_files(source: Path) -> list[str] | None:
    """The files git tracks, when ``source`` is the top of a work tree git can read."""
    git = shutil.which("git")
    if git is None:
        return None

    def run(*arguments: str) -> str | None:
        result = subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(source), *arguments], capture_output=True, text=True, check=False
        )
        return result.stdout if result.returncode == 0 else None

    top = run("rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != source.resolve():
        return None  # not a checkout (an archive), or one folder of a larger one: walk it instead
    listed = run("ls-files", "-z", "--cached")
    return None if listed is None else [name for name in listed.split("\0") if name]


def _ignore_rules(source: Path) -> list[str]:
    """The plain patterns of the root .gitignore (negations and nested files are not read)."""
    path = source / ".gitignore"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [line.strip() for line in lines if line.strip() and line.strip()[0] not in "#!"]


def _ignored(relative: str, is_dir: bool, rules: list[str]) -> bool:
    name = relative.rsplit("/", 1)[-1]
    for rule in rules:
        if rule.endswith("/") and not is_dir:
            continue
        pattern = rule.strip("/")
        if fnmatch.fnmatchcase(relative if "/" in pattern else name, pattern):
            return True
    return False


def _walked_files(source: Path) -> list[str]:
    """Every file below ``source`` that neither NOT_COPIED nor its .gitignore leaves out."""
    rules = _ignore_rules(source)
    found: list[str] = []
    for folder, dirs, files in os.walk(source):
        base = Path(folder).relative_to(source).as_posix()
        prefix = "" if base == "." else f"{base}/"
        dirs[:] = [
            d
            for d in dirs
            if not excluded(f"{prefix}{d}") and not _ignored(f"{prefix}{d}", True, rules)
        ]
        found += [f"{prefix}{f}" for f in files if not _ignored(f"{prefix}{f}", False, rules)]
    return found


def live_files(source: Path, target: Path) -> list[str]:
    """The repository's files as they are now, relative to its root, minus NOT_COPIED.

    In a git checkout, those git tracks, with their working-tree contents (files not added yet are
    someone's work in progress); elsewhere, every file its .gitignore does not ignore. ``target``,
    the new project, is left out when it is inside ``source``.
    """
    names = _git_files(source)
    if names is None:
        names = _walked_files(source)
    inside = target.resolve().is_relative_to(source.resolve())
    project = target.resolve().relative_to(source.resolve()).as_posix() if inside else None
    return sorted(
        name
        for name in names
        if not excluded(name)
        and not (project and (name == project or name.startswith(f"{project}/")))
        and ((source / name).is_file() or (source / name).is_symlink())
    )


def copy_files(source: Path, target: Path, names: list[str]) -> None:
    """Contents, modes and times: make's up-to-date checks see the files as they were."""
    for name in names:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, destination, follow_symlinks=False)


# --- What is project-specific ---------------------------------------------------------------------


@dataclass(frozen=True)
class Names:
    project: str  # prose: README title, template and bootstrap descriptions, the app's docstring
    slug: str  # stacks <slug>-dev/-prod, their artifact prefixes, pyproject name, commands in docs
    service: str  # POWERTOOLS_SERVICE_NAME
    namespace: str  # POWERTOOLS_METRICS_NAMESPACE (and its -Local/-Test variants)
    region: str  # both stacks, the workflow's fallback, make's AWS_DEFAULT_REGION, tests and events


# What this repository calls itself. The example domain (items table, exports bucket, the functions
# and their events) is not in here: it is the worked example a new service starts from.
SOURCE = Names(
    project="Items service",
    slug="items-service",
    service="items",
    namespace="ItemsService",
    region="eu-west-1",
)


@dataclass(frozen=True)
class Rewrite:
    paths: str  # glob over relative paths; "*" is every text file
    old: str  # regular expression, MULTILINE
    new: str | Callable[[str], str]  # the text, or a function of the matched text
    at_least: int = 1  # matches expected over all of `paths`
    at_most: int | None = None


def rewrites(new: Names, overrides: dict[str, str]) -> list[Rewrite]:
    """Every project-specific value of the live files, and what the answers make of it.

    A rewrite that no longer matches fails the hook (and tests/infra/test_sam_init.py), so a change
    to the live files cannot leave a name of this project in generated ones unnoticed.
    """
    items_service_name = re.escape(SOURCE.service)
    found: list[Rewrite] = [
        Rewrite("*", re.escape(SOURCE.slug), new.slug),
        Rewrite("*", re.escape(SOURCE.namespace), new.namespace),
        Rewrite("*", re.escape(SOURCE.region), new.region),
        Rewrite("*", re.escape(SOURCE.project), new.project),
        Rewrite(
            "template.yaml",
            rf"(?<=^        POWERTOOLS_SERVICE_NAME: ){items_service_name}$",
            new.service,
            at_most=1,
        ),
        Rewrite(
            "tests/conftest.py",
            rf'(?<="POWERTOOLS_SERVICE_NAME": "){items_service_name}(?=")',
            new.service,
            at_most=1,
        ),
        Rewrite(
            "deploy/bootstrap.yaml", r"of the\n  items service,", f"of\n  {new.project},", at_most=1
        ),
        # A generated project is no template: its README and Makefile lose what is about making one
        # (at most once each; tests/infra/test_sam_init.py checks that nothing of it is left).
        Rewrite(
            "README.md",
            r"^## Start a new service from this template\n(?s:.*?)(?=^## |\Z)",
            "",
            at_least=0,
            at_most=1,
        ),
        Rewrite("Makefile", r"^\.PHONY: new-service\n(?:.+\n)*\n?", "", at_least=0, at_most=1),
    ]
    if overrides:  # template parameters the answers set, for dev and prod alike
        added = " ".join(f"{name}={value}" for name, value in overrides.items())
        found.append(
            Rewrite(
                "samconfig.toml",
                r'(?<=^parameter_overrides = ")[^"\n]*(?="$)',
                # The whole value is matched here, so the stack names in it are renamed here too.
                lambda current: f"{current.replace(SOURCE.slug, new.slug)} {added}",
                at_least=2,  # [default] (dev) and [prod]
                at_most=2,
            )
        )
    return found


def _read_text(path: Path) -> str | None:
    if path.is_symlink():
        return None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None
    return None if "\0" in text else text


def apply_rewrites(
    target: Path, names: list[str], plan: list[Rewrite]
) -> tuple[list[str], list[str]]:
    """Apply every rewrite in one pass per file (a new value is never rewritten again).

    Returns the problems (rewrites that matched other than expected) and the files rewritten.
    """
    matched = [0] * len(plan)
    changed: list[str] = []
    for name in names:
        applicable = [i for i, r in enumerate(plan) if fnmatch.fnmatchcase(name, r.paths)]
        path = target / name
        text = _read_text(path) if applicable else None
        if text is None:
            continue
        pattern = re.compile("|".join(f"(?P<r{i}>{plan[i].old})" for i in applicable), re.MULTILINE)

        def replace(match: re.Match[str]) -> str:
            (index,) = (int(k[1:]) for k, v in match.groupdict().items() if v is not None)
            matched[index] += 1
            new = plan[index].new
            return new if isinstance(new, str) else new(match.group(0))

        rewritten = pattern.sub(replace, text)
        if rewritten != text:
            path.write_text(rewritten, encoding="utf-8")
            changed.append(name)
    problems = [
        f"{r.paths}: {r.old!r} matched {count} times, expected {r.at_least} to {r.at_most or 'any'}"
        for r, count in zip(plan, matched, strict=True)
        if count < r.at_least or (r.at_most is not None and count > r.at_most)
    ]
    return problems, changed


def too_long(source: Path, target: Path, changed: list[str]) -> list[str]:
    """Python lines the answers pushed over ruff's line-length (`make test` would stop at them).

    The live files keep room for long answers, and tests/infra/test_sam_init.py renders long ones;
    this names the line when that room runs out. Lines already long in the source are ruff's
    business.
    """
    pyproject = target / "pyproject.toml"
    if not pyproject.is_file():
        return []
    with pyproject.open("rb") as file:
        limit = tomllib.load(file).get("tool", {}).get("ruff", {}).get("line-length", 88)
    found = []
    for name in (name for name in changed if name.endswith(".py")):
        before = (source / name).read_text(encoding="utf-8").splitlines()
        after = (target / name).read_text(encoding="utf-8").splitlines()
        found += [
            f"{name}:{number}: {len(new)} characters, over ruff's {limit}"
            for number, (old, new) in enumerate(zip(before, after, strict=False), 1)
            if len(new) > limit >= len(old)
        ]
    return found


# --- The answers ----------------------------------------------------------------------------------

SLUG = re.compile(r"[a-z][a-z0-9-]{0,24}")
SERVICE = re.compile(r"[a-z][a-z0-9_-]{0,63}")
NAMESPACE = re.compile(r"[A-Za-z][A-Za-z0-9._/#-]{0,254}")
YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}
REGION = re.compile(r"[a-z]{2}-[a-z]+-\d{1,2}")
# The template's own AllowedPattern for WriterRoleArn.
ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+")
# The template's JwtIssuer pattern, without what samconfig.toml's parameter_overrides cannot hold
# unquoted (spaces, quotes); the same for an audience.
ISSUER = re.compile(r"https://[^\s\"'\\]+")
AUDIENCE = re.compile(r"[^\s\"'\\]{1,256}")


@dataclass(frozen=True)
class Answers:
    names: Names
    writer_role_arn: str
    source: Path
    jwt_issuer: str = ""
    jwt_audience: str = ""

    def overrides(self) -> dict[str, str]:
        """The template parameters these answers set (none: the template's defaults)."""
        values = {
            "WriterRoleArn": self.writer_role_arn,
            "JwtIssuer": self.jwt_issuer,
            "JwtAudience": self.jwt_audience,
        }
        return {name: value for name, value in values.items() if value}


def answers_from(context: dict[str, Any]) -> Answers:
    names = Names(
        project=str(context["project_name"]).strip(),
        slug=str(context["__project_slug"]).strip(),
        service=str(context["service_name"]).strip(),
        namespace=str(context["__metrics_namespace"]).strip(),
        region=str(context["aws_region"]).strip(),
    )
    return Answers(
        names,
        str(context["writer_role_arn"]).strip(),
        _source(context["_repo_dir"]),
        jwt_issuer=str(context.get("jwt_issuer", "")).strip(),
        jwt_audience=str(context.get("jwt_audience", "")).strip(),
    )


def _source(repo_dir: str) -> Path:
    """The template's folder. cookiecutter passes a local --location as given, maybe relative to
    the directory sam was started in; this hook runs in the new project instead."""
    path = Path(repo_dir)
    if not path.is_absolute():
        path = Path(os.environ.get("PWD", os.getcwd())) / path
    return path.resolve()


def problems_with(answers: Answers) -> list[str]:
    names = answers.names
    problems = []
    if not names.project or re.search(r'["\\\x00-\x1f]', names.project) or len(names.project) > 48:
        problems.append(
            f"project name {names.project!r}: 1 to 48 characters, no quotes, backslashes, newlines"
        )
    if not SLUG.fullmatch(names.slug):
        problems.append(
            f"project slug {names.slug!r} (from the project name): a letter, then at most 24 "
            "lower-case letters, digits or hyphens (the stack <slug>-prod fits 30 characters)"
        )
    if not SERVICE.fullmatch(names.service) or names.service in YAML_WORDS:
        problems.append(
            f"service name {names.service!r}: a lower-case letter, then letters, digits, - or _ "
            "(at most 64; not a YAML word such as yes or off)"
        )
    if not NAMESPACE.fullmatch(names.namespace) or names.namespace.startswith("AWS/"):
        problems.append(f"metrics namespace {names.namespace!r} (from the service name) is invalid")
    if not REGION.fullmatch(names.region) or names.region.startswith("cn-"):
        problems.append(
            f"AWS region {names.region!r}: a region of the aws partition, such as eu-west-1 "
            "(the events and tests build arn:aws: ARNs)"
        )
    if answers.writer_role_arn and not ROLE_ARN.fullmatch(answers.writer_role_arn):
        problems.append(
            f"writer role {answers.writer_role_arn!r}: empty, or an IAM role ARN such as "
            "arn:aws:iam::123456789012:role/exports-writer"
        )
    if answers.jwt_issuer and not ISSUER.fullmatch(answers.jwt_issuer):
        problems.append(
            f"JWT issuer {answers.jwt_issuer!r}: empty (the stack's own Cognito user pool), or "
            "the https:// URL a token's iss claim holds, such as https://example.eu.auth0.com/"
        )
    if bool(answers.jwt_issuer) != bool(answers.jwt_audience) or (
        answers.jwt_audience and not AUDIENCE.fullmatch(answers.jwt_audience)
    ):
        problems.append(
            f"JWT audience {answers.jwt_audience!r}: required with an issuer (the aud, or the "
            "client_id, its tokens carry; no spaces or quotes), and empty without one"
        )
    if not (answers.source / "cookiecutter.json").is_file():
        problems.append(f"the template's folder {answers.source} has no cookiecutter.json")
    return problems


def generate(answers: Answers, target: Path) -> list[str]:
    """Copy and rewrite into ``target``; the problems, if any (then ``target`` is incomplete)."""
    problems = problems_with(answers)
    if problems:
        return problems
    leftovers = sorted(p.name for p in target.iterdir() if p.name != PLACEHOLDER)
    if leftovers:
        return [f"{target} holds more than cookiecutter's placeholder: {leftovers}"]
    (target / PLACEHOLDER).unlink(missing_ok=True)
    names = live_files(answers.source, target)
    copy_files(answers.source, target, names)
    problems, changed = apply_rewrites(target, names, rewrites(answers.names, answers.overrides()))
    if not problems:
        sys.stderr.write(
            "".join(
                f"sam init: warning: {line}: shorten it, or choose shorter names\n"
                for line in too_long(answers.source, target, changed)
            )
        )
    return problems


def main() -> int:
    answers = answers_from(json.loads(_RENDERED_ANSWERS))
    target = Path.cwd()
    problems = generate(answers, target)
    if problems:
        sys.stderr.write("".join(f"sam init: {problem}\n" for problem in problems))
        return 1
    names = answers.names
    writer = (
        f"through {answers.writer_role_arn} (WriterRoleArn in samconfig.toml)"
        if answers.writer_role_arn
        else "through a writer role the stack creates"
    )
    callers = (
        f"tokens from {answers.jwt_issuer} for {answers.jwt_audience} (samconfig.toml)"
        if answers.jwt_issuer
        else "tokens from a Cognito user pool the stack creates (README: Authentication)"
    )
    sys.stdout.write(
        f"\n{names.project} is in {target}, made from {answers.source}:\n"
        f"  stacks   {names.slug}-dev and {names.slug}-prod in {names.region}\n"
        f"  service  {names.service} (metrics namespace {names.namespace})\n"
        f"  exports  {writer}\n"
        f"  callers  {callers}\n"
        f"Next: cd {target.name} && make test && make invoke\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
# {% endraw %}
