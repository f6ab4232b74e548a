"""The documentation's examples work: the tutorial's project runs, every snippet parses."""

from __future__ import annotations

import ast
import configparser
import os
import re
import shutil
import socket
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from django.template import engines

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
TUTORIAL = DOCS / "tutorial" / "mysite"
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts)
FENCE = re.compile(
    r"^(?P<indent> *)(?P<ticks>```+)(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)(?P=ticks)\s*$",
    re.M | re.S,
)

# What the tutorial's reader does once the project's files are written, then checks.
READER = """
import io, json, os, re
import django
django.setup()
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from PIL import Image
from gallery.models import Photo

picture = io.BytesIO()
Image.new("RGB", (640, 480), "teal").save(picture, "JPEG")
client = Client()
upload = SimpleUploadedFile("t.jpg", picture.getvalue())
response = client.post("/", {"title": "Teal", "image": upload})
assert response.status_code == 302, response.content
img = re.search(r"<img[^>]*>", client.get("/").content.decode()).group(0)
assert "processing.svg" in img and "data-attachment-status" in img, img
status = re.search(r'data-attachment-status="([^"]+)"', img).group(1)
assert json.loads(client.get(status).content)["state"] == "processing"

call_command("process_attachments", burst=True)
photo = Photo.objects.get()
assert photo.image.ready, photo.image.state
payload = json.loads(client.get(status).content)
assert payload["state"] == "ready" and payload["urls"]["thumb"].split("?")[0].endswith(".jpg")
thumb = photo.image.styles["thumb"]
with thumb.storage.open(thumb.name) as fp:
    assert Image.open(fp).size == (200, 200)
page = client.get("/").content.decode()
assert "processing.svg" not in page and thumb.name.rsplit("/", 1)[-1] in page, page
from django.core.files.storage import storages

# The how-to: a style added after launch falls back, then reprocess_attachments makes it.
from attachments.styles import parse_styles

field = Photo._meta.get_field("image")
field.styles = {**field.styles, **parse_styles({"wide": "300x100#"})}
photo.refresh_from_db()
large = photo.image.styles["large"].url
assert photo.image.styles["wide"].url == large, "the nearest made style stands in"
call_command("reprocess_attachments", "gallery.photo.image", "--inline")
photo.refresh_from_db()
wide = photo.image.styles["wide"]
with wide.storage.open(wide.name) as fp:
    assert Image.open(fp).size == (300, 100)
assert photo.image.styles["thumb"].name == thumb.name, "made already: not made again"
print("tutorial ok:", type(storages["default"]).__name__)
"""


def run_tutorial(tmp_path: Path, environ: dict[str, str]) -> str:
    project = tmp_path / "mysite"
    shutil.copytree(TUTORIAL, project, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        **environ,
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    env["DJANGO_SETTINGS_MODULE"] = environ.get("DJANGO_SETTINGS_MODULE", "mysite.settings")
    for command in (["makemigrations", "gallery"], ["migrate", "--verbosity", "0"]):
        subprocess.run(
            [sys.executable, "manage.py", *command], cwd=project, env=env, check=True, text=True
        )
    result = subprocess.run(
        [sys.executable, "-c", READER], cwd=project, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_tutorial_on_local_files(tmp_path):
    assert "FileSystemStorage" in run_tutorial(tmp_path, {})


@pytest.mark.slow
def test_tutorial_on_s3(tmp_path):
    moto = pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        aws = {
            "AWS_ACCESS_KEY_ID": "tutorial",
            "AWS_SECRET_ACCESS_KEY": "tutorial-secret",
            "AWS_DEFAULT_REGION": "us-east-1",
            # The settings name no endpoint: boto3 reads this, as it would a real one.
            "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        }
        boto3.client(
            "s3",
            endpoint_url=aws["AWS_ENDPOINT_URL_S3"],
            region_name="us-east-1",
            aws_access_key_id="tutorial",
            aws_secret_access_key="tutorial-secret",
        ).create_bucket(Bucket="tutorial-photos")
        output = run_tutorial(
            tmp_path,
            {
                **aws,
                "DJANGO_SETTINGS_MODULE": "mysite.settings_s3",
                "ATTACHMENTS_BUCKET": "tutorial-photos",
            },
        )
    finally:
        server.stop()
    assert "S3Storage" in output


def snippet(page: str, containing: str) -> str:
    """The one code block of ``page`` that contains ``containing``."""
    (code,) = [code for where, _, code in fences() if where.startswith(page) and containing in code]
    return code


def fences() -> list[tuple[str, str, str]]:
    """Every fenced code block of the docs' Markdown pages: (where, language, code)."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in FENCE.finditer(text):
            info = match["info"].strip()
            language = info.strip("{}").split()[0] if info else ""
            body = "\n".join(line[len(match["indent"]) :] for line in match["body"].splitlines())
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(DOCS)}:{line}", language, body))
    return found


def test_every_code_block_says_its_language():
    # architecture.md is included as it stands; its diagrams are plain text.
    unlabelled = [
        where
        for where, language, _ in fences()
        if not language and not where.startswith("architecture.md")
    ]
    assert not unlabelled


@pytest.mark.parametrize(
    ("where", "language", "code"),
    [case for case in fences() if case[1] in {"python", "django", "ini", "systemd", "toml"}],
    ids=lambda value: value if isinstance(value, str) and ".md:" in value else "",
)
def test_code_block_parses(where, language, code):
    if language == "python":
        ast.parse(code, where)
    elif language == "django":
        engines["django"].from_string(code)
    elif language == "toml":
        tomllib.loads(code)
    else:  # systemd units and ini files
        configparser.ConfigParser(strict=False, interpolation=None).read_string(code, where)


DEPLOY = DOCS / "howto" / "deploy"


def test_deployment_examples_parse():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd keys are case-sensitive
    unit.read_string((DEPLOY / "attachments-worker.service").read_text())
    assert "process_attachments" in unit["Service"]["ExecStart"]
    # More time to stop than the worker gives running jobs by default.
    assert int(unit["Service"]["TimeoutStopSec"]) > 30
    for line in (DEPLOY / "Procfile").read_text().splitlines():
        assert re.fullmatch(r"[a-z]+: \S.*", line), line
    instructions = {"FROM", "ENV", "WORKDIR", "COPY", "RUN", "CMD", "ARG", "USER", "EXPOSE"}
    for line in (DEPLOY / "Dockerfile").read_text().splitlines():
        if line and not line.startswith("#"):
            assert line.split()[0] in instructions, line
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert "process_attachments" in compose["services"]["worker"]["command"]


def test_tests_the_docs_cite_exist():
    """The guarantees page names the tests that hold each promise: they must still exist."""
    defined = {
        name
        for path in (ROOT / "tests").rglob("test_*.py")
        for name in re.findall(r"^(?:async )?def (test_\w+)", path.read_text(), re.M)
    }
    cited = set()
    for page in PAGES:
        text = page.read_text()
        for path in re.findall(r"tests/(test_\w+\.py)", text):
            assert (ROOT / "tests" / path).exists(), f"{page.name} cites tests/{path}"
        cited |= set(re.findall(r"`(?:tests/test_\w+\.py::)?(test_\w+)`", text))
    assert cited
    assert cited <= defined, sorted(cited - defined)


def test_the_responsive_howtos_template_reads_only_what_its_model_declares():
    """Followed as written, a new project got ``alt=""``: the template read a field the
    model did not have."""
    page = "howto/responsive-images.md"
    model = ast.parse(snippet(page, "class Article"))
    declared = {
        target.id
        for node in ast.walk(model)
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    read = set(re.findall(r"\barticle\.(\w+)", snippet(page, "attachment_picture")))
    assert read <= declared


def test_inline_python_reads_a_style_by_key():
    """``file.styles`` is a mapping: ``.styles.thumb`` works in a template only."""
    for page in PAGES:
        for code in re.findall(r"`([^`\n]+)`", page.read_text()):
            if not code.startswith("{"):
                assert not re.search(r"\.styles\.(?!py\b)\w+", code), (page.name, code)
