"""Reference tables generated from the code, so the docs cannot drift from it.

Each directive reads one source of truth: ``attachments.conf.DEFAULTS`` and the
comments above its keys, the system checks' ids in the package's source, the
field's signature, the management commands' parsers, the template library, the
signals module and the upload errors' codes. Something the code has and the
docs cannot describe (a setting or field option without a description) is a
Sphinx warning, which the CI build (``-W``) turns into an error.
"""

from __future__ import annotations

import ast
import inspect
import io
import pkgutil
import tokenize
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

import attachments

PACKAGE = Path(attachments.__file__).resolve().parent
logger = logging.getLogger(__name__)


def _comments_above(source: str) -> dict[int, str]:
    """Map each line to the ``#`` comment block that ends just above it."""
    comments: dict[int, list[str]] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT and token.line.strip().startswith("#"):
            comments[token.start[0]] = [token.string.lstrip("#").strip()]
    blocks: dict[int, str] = {}
    for line in sorted(comments):
        if line - 1 in comments:
            continue
        end, text = line, list(comments[line])
        while end + 1 in comments:
            end += 1
            text += comments[end]
        blocks[end + 1] = " ".join(text)
    return blocks


def _literal(text: str) -> str:
    return f"``{text}``" if text else ""


def _table(header: list[str], rows: list[list[str]], widths: str = "auto") -> list[str]:
    lines = ["````{list-table}", ":header-rows: 1", f":widths: {widths}", ""]
    for row in [header, *rows]:
        first, *rest = row
        lines.append(f"* - {first}")
        lines += [f"  - {cell}" for cell in rest]
    return [*lines, "````"]


class _Generated(SphinxDirective):
    """Markdown (MyST) made from the code, parsed in place of the directive."""

    has_content = True

    def lines(self) -> list[str]:
        raise NotImplementedError

    def run(self) -> list[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(StringList(self.lines(), self.get_source_info()[0]), 0, container)
        return container.children

    def warn(self, message: str) -> None:
        logger.warning(message, location=self.get_location())

    def described(self) -> dict[str, str]:
        """The directive's own ``name: description`` lines."""
        found: dict[str, str] = {}
        name = ""
        for line in self.content:
            if line and not line[0].isspace() and ":" in line:
                name, _, text = line.partition(":")
                found[name.strip()] = text.strip()
            elif name and line.strip():
                found[name] += " " + line.strip()
        return found


class SettingsTable(_Generated):
    """Every key of ``ATTACHMENTS``, its default and the comment above it in conf.py."""

    def lines(self) -> list[str]:
        from attachments.conf import DEFAULTS

        source = (PACKAGE / "conf.py").read_text()
        comments = _comments_above(source)
        tree = ast.parse(source)
        rows, last, previous_line = [], "", -1
        for node in ast.walk(tree):
            if isinstance(node, ast.AnnAssign | ast.Assign) and isinstance(node.value, ast.Dict):
                for key, value in zip(node.value.keys, node.value.values, strict=True):
                    assert isinstance(key, ast.Constant)
                    # Keys listed together share the comment above the first of them.
                    text = comments.get(key.lineno) or (
                        last if key.lineno - 1 == previous_line else ""
                    )
                    if not text:
                        self.warn(f"ATTACHMENTS[{key.value!r}] has no comment in conf.py")
                    default = ast.get_source_segment(source, value) or repr(DEFAULTS[key.value])
                    rows.append([f"``{key.value}``", _literal(default), _escape(text)])
                    last, previous_line = text, value.end_lineno or key.lineno
        missing = set(DEFAULTS) - {row[0].strip("`") for row in rows}
        if missing:
            self.warn(f"settings not found in conf.py's DEFAULTS literal: {sorted(missing)}")
        return _table(["Key", "Default", "Meaning"], rows, "20 20 60")


class ChecksTable(_Generated):
    """Every system check id raised anywhere in the package, with its message and hint."""

    def lines(self) -> list[str]:
        rows = []
        seen: dict[str, str] = {}
        for path in sorted(PACKAGE.rglob("*.py")):
            if "migrations" in path.parts:
                continue
            source = path.read_text()
            for node in ast.walk(ast.parse(source)):
                if not isinstance(node, ast.Call):
                    continue
                keywords = {k.arg: k.value for k in node.keywords}
                ident = keywords.get("id")
                if not (
                    isinstance(ident, ast.Constant) and str(ident.value).startswith("attachments.")
                ):
                    continue
                level = ast.get_source_segment(source, node.func) or ""
                message = _text(source, node.args[0]) if node.args else ""
                hint = _text(source, keywords["hint"]) if "hint" in keywords else ""
                module = str(path.relative_to(PACKAGE.parent))
                if ident.value in seen and seen[ident.value] != message:
                    self.warn(f"{ident.value} is raised with two messages")
                seen[ident.value] = message
                rows.append((ident.value, level.rsplit(".", 1)[-1], message, hint, module))
        rows.sort()
        return _table(
            ["Id", "Level", "Message", "Hint", "Where"],
            [[f"``{i}``", lvl, msg, hint, f"``{mod}``"] for i, lvl, msg, hint, mod in rows],
            "12 8 40 30 10",
        )


def _text(source: str, node: ast.expr) -> str:
    """A message as written: string pieces joined, computed pieces shown as code."""
    if isinstance(node, ast.Constant):
        return _escape(str(node.value))
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                parts.append(_code(ast.get_source_segment(source, value.value) or "..."))
            else:
                parts.append(_text(source, value))
        return _join(parts)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _join([_text(source, node.left), _text(source, node.right)])
    if isinstance(node, ast.Call) and node.args:  # _("...") and friends
        return _text(source, node.args[0])
    return _code(ast.get_source_segment(source, node) or "...")


def _join(parts: list[str]) -> str:
    # Two code spans side by side would read as one longer backtick fence.
    text = ""
    for part in parts:
        text += " " + part if text.endswith("`") and part.startswith("`") else part
    return text


def _code(expression: str) -> str:
    """``expression`` as inline code, spaces around it so it never touches a backtick."""
    return f"`` {expression} ``" if "`" in expression else f"`{expression}`"


def _escape(text: str) -> str:
    for char in "\\*`|_":
        text = text.replace(char, "\\" + char)
    return text


class FieldOptions(_Generated):
    """``AttachmentField``'s own keyword arguments, defaults from its signature."""

    def lines(self) -> list[str]:
        from attachments.fields import AttachmentField

        described = self.described()
        rows = []
        for name, parameter in inspect.signature(AttachmentField.__init__).parameters.items():
            if parameter.kind is not inspect.Parameter.KEYWORD_ONLY:
                continue
            if name not in described:
                self.warn(f"AttachmentField option {name!r} has no description")
            rows.append([f"``{name}``", f"``{parameter.default!r}``", described.pop(name, "")])
        for name in described:
            self.warn(f"{name!r} is described but AttachmentField has no such option")
        return _table(["Option", "Default", "Meaning"], rows, "20 15 65")


class Commands(_Generated):
    """Each management command of the app, with the help its parser prints."""

    def lines(self) -> list[str]:
        from django.core.management import load_command_class

        lines: list[str] = []
        commands = PACKAGE / "management" / "commands"
        for module in sorted(pkgutil.iter_modules([str(commands)]), key=lambda m: m.name):
            if module.name.startswith("_"):
                continue
            command = load_command_class("attachments", module.name)
            parser = command.create_parser("manage.py", module.name)
            # A fixed width, so the page is the same whatever terminal built it.
            parser.formatter_class = _fixed_width(parser.formatter_class)
            lines += [
                f"```{{rubric}} {module.name}",
                "```",
                "",
                "```text",
                *parser.format_help().splitlines(),
                "```",
                "",
            ]
        return lines


def _fixed_width(formatter: Any) -> Any:
    def make(prog: str) -> Any:
        return formatter(prog, width=88)

    return make


class TemplateTags(_Generated):
    """The ``{% load attachments %}`` library: each tag's signature and docstring."""

    def lines(self) -> list[str]:
        from attachments.templatetags.attachments import register

        lines: list[str] = []
        for name, tag in sorted(register.tags.items()):
            function = getattr(tag, "__wrapped__", tag)
            parameters = list(inspect.signature(function).parameters.values())
            usage = " ".join(_tag_argument(p) for p in parameters)
            lines += [
                f"```{{rubric}} {name}",
                "```",
                "",
                "```django",
                f"{{% {name} {usage} %}}".replace("  %", " %"),
                "```",
                "",
                inspect.getdoc(function) or "",
                "",
            ]
        return lines


def _tag_argument(parameter: inspect.Parameter) -> str:
    if parameter.kind is inspect.Parameter.VAR_KEYWORD:
        return "attribute=value ..."
    if parameter.default is not inspect.Parameter.empty:
        return f"[{parameter.name}={parameter.default!r}]"
    return parameter.name


class Signals(_Generated):
    """The app's signals, described by the comments above them."""

    def lines(self) -> list[str]:
        source = (PACKAGE / "signals.py").read_text()
        comments = _comments_above(source)
        rows = []
        for node in ast.parse(source).body:
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                text = comments.get(node.lineno, "")
                if not text:
                    self.warn(f"signal {name} has no comment in signals.py")
                rows.append([f"``attachments.signals.{name}``", _escape(text)])
        return _table(["Signal", "Sent"], rows, "30 70")


class ErrorCodes(_Generated):
    """The codes of upload errors, with their message, as the code raises them."""

    def lines(self) -> list[str]:
        from attachments import exceptions

        rows: dict[tuple[str, str], str] = {}
        sources = {path: path.read_text() for path in sorted(PACKAGE.rglob("*.py"))}
        trees = {path: ast.parse(source) for path, source in sources.items()}
        # A helper or a message constant may be imported from another module (imaging/).
        helpers = _raising_helpers(trees.values(), exceptions)
        constants = {
            name: (value, path) for path, tree in trees.items() for name, value in _constants(tree)
        }
        for path, tree in trees.items():
            for code, message in _raised_messages(
                tree, sources[path], helpers, constants, sources, exceptions
            ):
                rows[(code, message)] = f"``{path.relative_to(PACKAGE)}``"
        return _table(
            ["Code", "Message", "Raised in"],
            [[f"``{code}``", message, where] for (code, message), where in sorted(rows.items())],
            "20 65 15",
        )


def _constants(tree: ast.Module) -> Iterator[tuple[str, ast.expr]]:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    yield target.id, node.value


def _invalid(exceptions: Any) -> set[str]:
    return {
        name
        for name, cls in vars(exceptions).items()
        if isinstance(cls, type) and issubclass(cls, exceptions.InvalidImage)
    }


def _raising_helpers(trees: Iterable[ast.Module], exceptions: Any) -> dict[str, str]:
    """Helper function -> code of the ``InvalidImage`` it raises with its argument as message.

    (``imaging.probing._decoding``): its callers' messages are followed one step.
    """
    invalid = _invalid(exceptions)
    helpers: dict[str, str] = {}
    for tree in trees:
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef):
                continue
            parameters = {arg.arg for arg in function.args.args}
            for call in ast.walk(function):
                if (
                    isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id in invalid
                    and call.args
                    and isinstance(call.args[0], ast.Name)
                    and call.args[0].id in parameters
                ):
                    helpers[function.name] = getattr(exceptions, call.func.id).code
    return helpers


def _raised_messages(
    tree: ast.Module,
    source: str,
    helpers: dict[str, str],
    constants: dict[str, tuple[ast.expr, Path]],
    sources: dict[Path, str],
    exceptions: Any,
) -> Iterator[tuple[str, str]]:
    """(code, message) of each ``InvalidImage`` a module raises, however the message gets there.

    A message may be a module constant, or an argument of a helper that raises it: both
    are followed one step, wherever in the package the constant or helper is defined.
    """
    invalid = _invalid(exceptions)
    for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
        if not (isinstance(call.func, ast.Name) and call.args):
            continue
        if call.func.id in invalid:
            keywords = {k.arg: k.value for k in call.keywords}
            code = keywords.get("code")
            name = (
                code.value
                if isinstance(code, ast.Constant)
                else getattr(exceptions, call.func.id).code
            )
        elif call.func.id in helpers:
            name = helpers[call.func.id]
        else:
            continue
        message = call.args[0]
        where = source
        if isinstance(message, ast.Name) and message.id in constants:
            message, path = constants[message.id]
            where = sources[path]
        elif isinstance(message, ast.Name):
            continue  # a helper's own parameter: reported where the helper is called
        yield str(name), _text(where, message)


DIRECTIVES: dict[str, type[SphinxDirective]] = {
    "attachments-settings": SettingsTable,
    "attachments-checks": ChecksTable,
    "attachments-field-options": FieldOptions,
    "attachments-commands": Commands,
    "attachments-template-tags": TemplateTags,
    "attachments-signals": Signals,
    "attachments-error-codes": ErrorCodes,
}


def setup(app: Sphinx) -> dict[str, Any]:
    for name, directive in DIRECTIVES.items():
        app.add_directive(name, directive)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
