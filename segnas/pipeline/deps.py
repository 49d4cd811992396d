"""Code dependencies of a stage: its script and every ``segnas`` module it imports, by AST."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import SegnasError


def _segnas_imports(file: Path, package_root: Path) -> set[str]:
    """Modules of the ``segnas`` package that ``file`` imports directly."""
    tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    inside = file.resolve().is_relative_to(package_root.resolve())
    own = (
        file.resolve().relative_to(package_root.resolve().parent).with_suffix("")
        if inside
        else None
    )
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "segnas")
        elif isinstance(node, ast.ImportFrom):
            if node.level and own is not None:
                package = list(own.parts[:-1])
                base = package[: len(package) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            elif node.level == 0 and node.module and node.module.split(".")[0] == "segnas":
                module = node.module
            else:
                continue
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def _module_file(module: str, package_root: Path) -> Path | None:
    parts = module.split(".")[1:]
    if not parts:
        return package_root / "__init__.py"
    relative = Path(*parts)
    for candidate in (
        package_root / relative.with_suffix(".py"),
        package_root / relative / "__init__.py",
    ):
        if candidate.is_file():
            return candidate
    return None


def stage_code_deps(stage: str, root: str | Path = ".") -> list[str]:
    """``stages/<stage>.py`` and every ``segnas`` source file it imports, transitively.

    Both engines declare these as the stage's code dependencies, so editing a library module
    reruns exactly the stages that import it.
    """
    root = Path(root)
    package_root = root / "segnas"
    script = root / "stages" / f"{stage}.py"
    if not script.is_file():
        raise SegnasError(f"{script} does not exist")
    files = {script}
    todo = [script]
    while todo:
        current = todo.pop()
        for module in _segnas_imports(current, package_root):
            parts = module.split(".")
            for depth in range(1, len(parts) + 1):
                path = _module_file(".".join(parts[:depth]), package_root)
                if path is not None and path not in files:
                    files.add(path)
                    todo.append(path)
    return sorted(p.relative_to(root).as_posix() for p in files)


def collapse_deps(files: list[str], root: str | Path = ".") -> list[str]:
    """Replace the files of a package folder by the folder when all its modules are listed.

    ``dvc.yaml`` declares these (shorter, same meaning: DVC hashes the whole folder).
    """
    root = Path(root)
    chosen = set(files)
    folders = sorted({str(Path(f).parent) for f in files if f.startswith("segnas/")}, key=len)
    for folder in folders:
        if folder == "segnas":
            continue
        modules = {p.relative_to(root).as_posix() for p in (root / folder).rglob("*.py")}
        if modules and modules <= chosen:
            chosen = (chosen - modules) | {folder}
    return sorted(chosen)


def expand_deps(deps: list[str], root: str | Path = ".") -> set[str]:
    """The Python files behind ``deps`` (folders expanded to their ``*.py`` files)."""
    root = Path(root)
    found: set[str] = set()
    for dep in deps:
        path = root / dep
        if path.is_dir():
            found.update(p.relative_to(root).as_posix() for p in path.rglob("*.py"))
        else:
            found.add(dep)
    return found
