"""Every cache that outlives a test run misses when any input that can change its result changes.

Caches: the shared synth per variant (tests/infra/aws/assembly.py), cfn-lint's verdict per set of templates
(tests/infra/aws/test_gates.py), the Lambda and Azure Functions dependency installs (constructs/). Each is shown
to miss for each kind of input, to hit when nothing changed, and to live in a git-ignored folder.
"""

from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from refarch.constructs.aws import functions
from refarch.constructs.azure import package
from refarch.stacks.selfnest.config import load_settings

from tests.infra.aws import assembly
from tests.labs import copy_runs
from tests.run_cache import COMPLETE, RunCache

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sources_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synth's source files, copied once; each test edits its own copy of this copy."""
    root = tmp_path_factory.mktemp("synth-sources")
    for name in assembly.SYNTH_SOURCES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, root / name)
    return root


@pytest.fixture
def root(sources_copy: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "root"
    shutil.copytree(sources_copy, copy)
    return copy


def append(path: Path, text: str) -> None:
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def edit_context(root: Path) -> None:
    cdk_json = json.loads((root / "cdk.json").read_text(encoding="utf-8"))
    cdk_json["context"]["@aws-cdk/aws-s3:publicAccessBlockedByDefault"] = False
    (root / "cdk.json").write_text(json.dumps(cdk_json), encoding="utf-8")


FILE_EDITS: dict[str, Callable[[Path], None]] = {
    "stack source": lambda root: append(root / "stacks" / "selfnest" / "network.py", "\n# edited\n"),
    "construct source": lambda root: append(root / "constructs" / "aws" / "tables.py", "\n# edited\n"),
    "Lambda handler source": lambda root: append(next((root / "services" / "selfnest_chat").glob("*.py")), "\n#\n"),
    "Lambda requirements": lambda root: append(root / "services" / "selfnest_chat" / "requirements.txt", "\n"),
    "config file": lambda root: append(root / "config" / "dev.yaml", "\n# edited\n"),
    "Python lock file": lambda root: append(root / "requirements.lock", "\n"),
    "npm lock file": lambda root: append(root / "package-lock.json", "\n"),
    "CDK context (cdk.json)": edit_context,
    "CDK context (cdk.context.json)": lambda root: append(root / "cdk.context.json", " "),
    "the synth recipe": lambda root: append(root / "tests" / "infra" / "aws" / "assembly.py", "\n# edited\n"),
}


def inputs(root: Path, environ: dict[str, str] | None = None, **changes: object) -> dict[str, str]:
    settings = load_settings("dev").model_copy(update=changes) if changes else load_settings("dev")
    return assembly.synthesis_inputs(settings, root=root, environ=environ or {})


@pytest.mark.parametrize("edit", FILE_EDITS.values(), ids=FILE_EDITS.keys())
def test_a_changed_file_changes_the_synth_key(root: Path, edit: Callable[[Path], None]) -> None:
    before = inputs(root)
    edit(root)
    after = inputs(root)
    assert RunCache("synth").entry("dev", before) != RunCache("synth").entry("dev", after)


def test_bytecode_and_tool_caches_do_not_change_the_synth_key(root: Path) -> None:
    before = inputs(root)
    (root / "stacks" / "selfnest" / "__pycache__").mkdir(exist_ok=True)
    (root / "stacks" / "selfnest" / "__pycache__" / "network.cpython-311.pyc").write_bytes(b"compiled")
    assert inputs(root) == before


def test_changed_settings_change_the_synth_key(root: Path) -> None:
    assert inputs(root) != inputs(root, retain_data=not load_settings("dev").retain_data)


@pytest.mark.parametrize("variable", ["CDK_DEFAULT_ACCOUNT", "CDK_DEFAULT_REGION", "CDK_VALIDATION", "JSII_DEBUG"])
def test_environment_variables_the_app_or_cdk_read_change_the_synth_key(root: Path, variable: str) -> None:
    assert inputs(root, {}) != inputs(root, {variable: "x"})
    assert inputs(root, {}) == inputs(root, {"UNRELATED_VARIABLE": "x"})


@pytest.mark.parametrize("tool", ["installed_distributions", "node_version"])
def test_tool_versions_change_the_synth_key(root: Path, tool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before = inputs(root)
    monkeypatch.setattr(assembly, tool, lambda: "another version")
    assert inputs(root) != before


def test_the_built_in_validation_switch_changes_the_synth_key() -> None:
    settings = load_settings("dev")
    assert (assembly.synthesis_inputs(settings, builtin_validation=True)
            != assembly.synthesis_inputs(settings, builtin_validation=False))


def environment_reads(source: str) -> set[str]:
    """Names in `os.environ[...]`, `os.environ.get(...)` and `os.getenv(...)` (code, not text in strings)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            argument: ast.expr = node.slice
        elif (isinstance(node, ast.Call) and node.args
              and ast.unparse(node.func).endswith(("environ.get", "getenv", "environ.setdefault"))):
            argument = node.args[0]
        else:
            continue
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            names.add(argument.value)
    return names


def test_every_environment_variable_the_app_reads_is_in_the_synth_key() -> None:
    read = {name for folder in ("stacks", "constructs") for source in (ROOT / folder).rglob("*.py")
            for name in environment_reads(source.read_text(encoding="utf-8"))}
    assert "CDK_DEFAULT_ACCOUNT" in read
    assert {name for name in read if name not in assembly.SYNTH_ENVIRONMENT
            and not name.startswith(assembly.SYNTH_ENVIRONMENT_PREFIXES)} == set()


def test_every_repository_module_the_app_imports_is_a_synth_source() -> None:
    # A fresh interpreter: this one has also imported the tools, labs and tests.
    program = ("import sys, refarch.stacks.selfnest.app, refarch.stacks.selfnest.__main__\n"
               "for module in list(sys.modules.values()): print(getattr(module, '__file__', None))")
    listing = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True,
                             cwd=ROOT).stdout.split()
    ours = {Path(name).resolve() for name in listing if name.startswith(str(ROOT)) and "/.venv/" not in name}
    sources = [(ROOT / name).resolve() for name in assembly.SYNTH_SOURCES]
    assert ours, "the app's own modules are listed"
    assert {str(path) for path in ours if not any(path.is_relative_to(source) for source in sources)} == set()


def test_a_cache_entry_is_built_once_reused_and_rebuilt_when_an_input_changes(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path, keep_per_label=1)
    builds: list[Path] = []

    def build(entry: Path) -> None:
        builds.append(entry)
        (entry / "result").write_text(str(len(builds)), encoding="utf-8")

    first, built = cache.get_or_build("dev", {"sources": "a"}, build)
    assert built and (first / COMPLETE).is_file()
    again, built = cache.get_or_build("dev", {"sources": "a"}, build)
    assert (again, built) == (first, False) and len(builds) == 1
    cache.release(first)     # its reader is gone
    changed, built = cache.get_or_build("dev", {"sources": "b"}, build)
    assert built and changed != first and (changed / "result").read_text(encoding="utf-8") == "2"
    assert not first.exists(), "the superseded entry is evicted"
    cache.release(changed)


def test_an_entry_a_process_is_reading_is_not_evicted(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path, keep_per_label=1)
    reader = subprocess.Popen(
        [sys.executable, "-c", "import sys, pathlib; from tests.run_cache import RunCache; "
                               f"RunCache('things', root=pathlib.Path({str(tmp_path)!r}))"
                               ".get_or_build('dev', {'sources': 'a'}, lambda entry: None); "
                               "print('reading', flush=True); sys.stdin.read()"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout is not None and reader.stdout.readline() == "reading\n"
        in_use = cache.entry("dev", {"sources": "a"})
        newer, _ = cache.get_or_build("dev", {"sources": "b"}, lambda entry: None)
        assert in_use.is_dir(), "evicted while another process reads it"
    finally:
        reader.communicate("")
    cache.release(newer)
    cache.get_or_build("dev", {"sources": "c"}, lambda entry: None)
    assert not in_use.exists() and not newer.exists(), "evicted once nobody reads them"


def test_an_entry_whose_build_failed_half_way_is_built_again(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path)

    def fail(entry: Path) -> None:
        (entry / "partial").write_text("half", encoding="utf-8")
        raise RuntimeError("synth failed")

    with pytest.raises(RuntimeError):
        cache.get_or_build("dev", {"sources": "a"}, fail)
    entry, built = cache.get_or_build("dev", {"sources": "a"}, lambda entry: None)
    assert built and not (entry / "partial").exists()
    cache.release(entry)


def test_variants_whose_labels_share_a_prefix_do_not_evict_each_other(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path, keep_per_label=1)
    pilot_light, _ = cache.get_or_build("prod-pilot_light", {"sources": "a"}, lambda entry: None)
    cache.release(pilot_light)   # not in use: only its label protects it
    cache.get_or_build("prod", {"sources": "b"}, lambda entry: None)
    assert pilot_light.is_dir()


def run_of(cache: RunCache, label: str, inputs: list[str], build: Callable[[Path], None]) -> list[bool]:
    """One test run whose processes each want one entry (the committed tree's `dev`, then each lab solution's
    patched `dev` in its own pytest process) and exit; whether each was built."""
    built = []
    for sources in inputs:
        entry, was_built = cache.get_or_build(label, {"sources": sources}, build)
        cache.release(entry)   # that process exits
        built.append(was_built)
    return built


def test_a_second_run_that_wants_several_entries_under_one_label_builds_none_of_them(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path)
    builds: list[Path] = []
    wanted = ["committed", *(f"lab-{number:02}-solution" for number in range(1, 14))]
    assert run_of(cache, "dev", wanted, builds.append) == [True] * len(wanted)
    assert run_of(cache, "dev", wanted, builds.append) == [False] * len(wanted)
    assert len(builds) == len(wanted)


def test_entries_beyond_the_limit_go_least_recently_used_first(tmp_path: Path) -> None:
    cache = RunCache("things", root=tmp_path, keep_per_label=3)
    oldest, newer, newest = (cache.get_or_build("dev", {"sources": sources}, lambda entry: None)[0]
                             for sources in ("a", "b", "c"))
    for entry in (oldest, newer, newest):
        cache.release(entry)
    assert run_of(cache, "dev", ["a"], lambda entry: None) == [False]   # the oldest build, used again just now
    assert run_of(cache, "dev", ["d"], lambda entry: None) == [True]
    assert oldest.is_dir() and newest.is_dir() and not newer.exists(), "the one no run used for longest goes"
    assert len([entry for entry in tmp_path.joinpath("things").iterdir() if entry.is_dir()]) == 3


def test_cfn_lint_verdicts_miss_when_templates_rules_or_tools_change(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.infra.aws import test_gates

    template = tmp_path / "network.template.json"
    template.write_text(json.dumps({"Resources": {}}), encoding="utf-8")
    runs: list[int] = []
    monkeypatch.setattr(test_gates, "LINT_CACHE", RunCache("cfn-lint", root=tmp_path / "cache"))

    def fake_run(*args: object, **kwargs: object) -> subprocess.CompletedProcess[str]:
        runs.append(1)
        return subprocess.CompletedProcess([], 0, "", "")

    monkeypatch.setattr(subprocess, "run", fake_run)
    test_gates.cfn_lint([template], label="dev")
    test_gates.cfn_lint([template], label="dev")
    assert len(runs) == 1
    template.write_text(json.dumps({"Resources": {"X": {}}}), encoding="utf-8")
    test_gates.cfn_lint([template], label="dev")
    assert len(runs) == 2
    monkeypatch.setattr(test_gates, "installed_distributions", lambda: "cfn-lint==99")
    test_gates.cfn_lint([template], label="dev")
    assert len(runs) == 3
    config = tmp_path / ".cfnlintrc.yaml"
    config.write_text("ignore_checks: [W1]\n", encoding="utf-8")
    monkeypatch.setattr(test_gates, "ROOT", tmp_path)
    test_gates.cfn_lint([template], label="dev")
    test_gates.cfn_lint([template], label="dev")
    assert len(runs) == 4
    config.write_text("ignore_checks: [W1, W2]\n", encoding="utf-8")
    test_gates.cfn_lint([template], label="dev")
    assert len(runs) == 5


@pytest.mark.parametrize("key", [functions.dependency_cache_key, package.dependency_cache_key],
                         ids=["lambda", "azure-functions"])
def test_dependency_installs_miss_when_pins_or_installer_change(key: Callable[..., str], tmp_path: Path) -> None:
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pyjwt==2.15.1\n", encoding="utf-8")
    before = key(requirements, installer="pip 25.0")
    assert key(requirements, installer="pip 25.0") == before
    assert key(requirements, installer="pip 25.1") != before
    requirements.write_text("pyjwt==2.15.2\n", encoding="utf-8")
    assert key(requirements, installer="pip 25.0") != before


@pytest.fixture
def lab_copy(tmp_path: Path) -> Path:
    """A small stand-in for a lab's copy: files, the `.typecheck` link tree, and a shared folder linked in."""
    copy = tmp_path / "repo"
    (copy / "config").mkdir(parents=True)
    (copy / "config" / "dev.yaml").write_text("network: {}\n", encoding="utf-8")
    (copy / "stacks").mkdir()
    (copy / "stacks" / "app.py").write_text("APP = 1\n", encoding="utf-8")
    (copy / ".typecheck" / "refarch").mkdir(parents=True)
    (copy / ".typecheck" / "refarch" / "stacks").symlink_to("../../stacks")
    (tmp_path / "shared-cache").mkdir()
    (copy / ".cache").symlink_to(tmp_path / "shared-cache")
    return copy


def retarget(link: Path, target: str) -> None:
    link.unlink()
    link.symlink_to(target)


COPY_EDITS: dict[str, Callable[[Path], None]] = {
    "changed file": lambda copy: append(copy / "stacks" / "app.py", "APP = 2\n"),
    "added file": lambda copy: (copy / "stacks" / "more.py").touch(),
    "removed file": lambda copy: (copy / "config" / "dev.yaml").unlink(),
    "re-pointed link": lambda copy: retarget(copy / ".typecheck" / "refarch" / "stacks", "../../config"),
}


@pytest.mark.parametrize("edit", COPY_EDITS.values(), ids=COPY_EDITS.keys())
def test_a_lab_copy_run_misses_when_the_copy_changes(lab_copy: Path, edit: Callable[[Path], None]) -> None:
    before = copy_runs.copy_run_inputs(lab_copy, ("-m", "refarch.tools.cli", "lab", "14", "--json"), environ={})
    edit(lab_copy)
    after = copy_runs.copy_run_inputs(lab_copy, ("-m", "refarch.tools.cli", "lab", "14", "--json"), environ={})
    assert RunCache("lab-runs").entry("lab-14", before) != RunCache("lab-runs").entry("lab-14", after)


def test_a_lab_copy_run_misses_for_another_command_variable_or_tool(lab_copy: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    command = ("-m", "refarch.tools.cli", "cost", "--env", "dev", "--json")

    def key(args: tuple[str, ...] = command, environ: dict[str, str] | None = None) -> str:
        return RunCache("lab-runs").entry("cost", copy_runs.copy_run_inputs(lab_copy, args,
                                                                           environ=environ or {})).name

    before = key()
    assert key(("-m", "refarch.tools.cli", "cost", "--env", "prod", "--json")) != before
    for variable in ("CDK_VALIDATION", "JSII_DEBUG", "PULUMI_CONFIG_PASSPHRASE", "REFARCH_ENV", "NODE_OPTIONS",
                     "PYTHONHASHSEED"):
        assert key(environ={variable: "x"}) != before, variable
    for variable in ("UNRELATED_VARIABLE", *(f"{prefix}ENDPOINT_URL" for prefix in copy_runs.EMULATOR_PREFIXES)):
        assert key(environ={variable: "x"}) == before, variable
    (lab_copy / ".cache" / "anything").write_text("a linked-in cache is not the copy", encoding="utf-8")
    assert key() == before
    for tool in ("installed_distributions", "node_version"):
        with monkeypatch.context() as patched:
            patched.setattr(copy_runs, tool, lambda: "another version")
            assert key() != before, tool


def test_a_lab_copy_run_is_run_once_and_a_failed_one_is_not_kept(lab_copy: Path, tmp_path: Path) -> None:
    cache = RunCache("lab-runs", root=tmp_path / "cache")
    runs = tmp_path / "runs.log"
    program = f"import pathlib; pathlib.Path({str(runs)!r}).open('a').write('run'); print('graded')"
    first = copy_runs.run_in_copy(lab_copy, "-c", program, label="lab-00", cache=cache)
    again = copy_runs.run_in_copy(lab_copy, "-c", program, label="lab-00", cache=cache)
    assert (first.returncode, first.stdout) == (again.returncode, again.stdout) == (0, "graded\n")
    assert runs.read_text(encoding="utf-8") == "run"
    failing = f"{program}; raise SystemExit(3)"
    for _ in range(2):
        with pytest.raises(AssertionError, match="exited 3"):
            copy_runs.run_in_copy(lab_copy, "-c", failing, label="lab-00", cache=cache)
    assert runs.read_text(encoding="utf-8") == "run" * 3
    accepted = copy_runs.run_in_copy(lab_copy, "-c", failing, label="lab-00", exit_codes=(0, 3), cache=cache)
    assert accepted.returncode == 3
    with pytest.raises(AssertionError, match="exited 3"):   # kept, but not what this caller accepts
        copy_runs.run_in_copy(lab_copy, "-c", failing, label="lab-00", cache=cache)
    assert runs.read_text(encoding="utf-8") == "run" * 4


def test_a_kept_lab_copy_run_names_the_copy_that_asks(lab_copy: Path, tmp_path: Path) -> None:
    """Each copy is a new folder: an output that names its copy reads back naming the one asking, not a gone one."""
    cache = RunCache("lab-runs", root=tmp_path / "cache")
    program = "import os; print(os.getcwd())"
    assert copy_runs.run_in_copy(lab_copy, "-c", program, label="lab-00", cache=cache).stdout == f"{lab_copy}\n"
    same_files = tmp_path / "another" / "repo"
    shutil.copytree(lab_copy, same_files, symlinks=True)
    assert copy_runs.run_in_copy(same_files, "-c", program, label="lab-00", cache=cache).stdout == f"{same_files}\n"
    assert len([entry for entry in cache.folder.iterdir() if entry.is_dir()]) == 1, "one entry served both"


def test_a_lab_copy_run_misses_when_the_code_that_runs_it_changes(lab_copy: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    runner = tmp_path / "runner.py"
    runner.write_text("ENVIRONMENT = {}\n", encoding="utf-8")
    monkeypatch.setattr(copy_runs, "RUNNER", (runner,))
    monkeypatch.setattr(copy_runs, "ROOT", tmp_path)
    before = copy_runs.copy_run_inputs(lab_copy, ("-m", "refarch.tools.cli", "lab", "14", "--json"), environ={})
    append(runner, "ENVIRONMENT['PYTHONPATH'] = ''\n")
    after = copy_runs.copy_run_inputs(lab_copy, ("-m", "refarch.tools.cli", "lab", "14", "--json"), environ={})
    assert before["runner"] != after["runner"]


def test_a_lab_copy_runs_without_the_emulators_variables(lab_copy: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """They are not in the key, so the process must not see them (a worker's moto port would leak into a grade)."""
    for prefix in copy_runs.EMULATOR_PREFIXES:
        monkeypatch.setenv(f"{prefix}ENDPOINT_URL", "http://localhost:1")
    monkeypatch.setenv("CDK_VALIDATION", "false")
    program = "import json, os; print(json.dumps(sorted(os.environ)))"
    seen = json.loads(copy_runs.run_in_copy(lab_copy, "-c", program, label="lab-00",
                                            cache=RunCache("lab-runs", root=tmp_path / "cache")).stdout)
    assert "CDK_VALIDATION" in seen
    assert [name for name in seen if name.startswith(copy_runs.EMULATOR_PREFIXES)] == []


def test_caches_live_in_git_ignored_folders(tmp_path: Path) -> None:
    # git's own verdict on the project's .gitignore, in a scratch repository (the lab tests copy the project
    # without its .git).
    subprocess.run(["git", "init", "--quiet", str(tmp_path)], check=True)
    shutil.copy2(ROOT / ".gitignore", tmp_path / ".gitignore")
    cached = [assembly.SYNTH_CACHE.folder / "dev-0", copy_runs.COPY_RUNS.folder / "lab-14-0",
              functions.DEPENDENCY_CACHE / "0",
              ROOT / ".build" / "babybloom_functions" / "site-packages-0"]
    relative = [str(path.relative_to(ROOT)) for path in cached]
    ignored = subprocess.run(["git", "check-ignore", *relative], cwd=tmp_path, capture_output=True, text=True,
                             check=False).stdout.split()
    assert sorted(ignored) == sorted(relative)
