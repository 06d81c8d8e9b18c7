"""`ketawatch export` as a user runs it: files written, refusals as one readable line and exit status 1."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from pypdf import PdfReader

from ketawatch.accounts import create_user
from ketawatch.cli_actor import cli_actor
from store.db import make_engine, upgrade
from store.queries import audit_frame
from tests.test_export_support import NOW, SECRET_PID, load_sample

# Registers the export group on the main app when cli.py does not (yet) do so itself.
_MAIN = (
    "import typer\n"
    "from ketawatch.cli import app, main\n"
    "from ketawatch.cli_export import register\n"
    "if not any(g.name == 'export' for g in app.registered_groups):\n"
    "    register(app)\n"
    "main()\n"
)


def ketawatch_process(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in its own process (slow: used once, for the exit status and stderr of a refusal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KETAWATCH_")}
    env["KETAWATCH_CLINIC_TIMEZONE"] = "Europe/London"
    return subprocess.run([sys.executable, "-c", _MAIN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=180)


@pytest.fixture
def ketawatch(monkeypatch, capsys):
    """The command's `main()` run in this process, returning (exit status, stdout, stderr)."""
    from ketawatch.cli import app, main
    from ketawatch.cli_export import register

    if not any(g.name == "export" for g in app.registered_groups):
        register(app)

    def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
        capsys.readouterr()
        monkeypatch.setattr(sys, "argv", ["ketawatch", *args])
        code = 0
        try:
            main()
        except SystemExit as exc:
            code = exc.code or 0
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)

    return run


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_sample(engine, tmp_path)
    create_user(engine, username="rev-one", display_name="Reviewer One", role="reviewer", password="a-long-password-1", actor="test")
    yield url, engine
    engine.dispose()


def test_patient_pdf_and_csv_folder(db, tmp_path, ketawatch):
    url, engine = db
    pdf = tmp_path / "out" / "case.pdf"
    export = ("export", "patient", SECRET_PID, "--format", "pdf", "--out", str(pdf), "--from", "2025-03-01",
              "--to", "2025-03-31", "--db", url)
    missing = ketawatch(*export, cwd=tmp_path)  # a mistyped folder is not made: the file would be lost from view
    assert missing.returncode == 1 and "does not exist; create it first" in missing.stderr
    assert not (tmp_path / "out").exists() and audit_frame(engine, action="export").empty
    (tmp_path / "out").mkdir()
    done = ketawatch(*export, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "exported (identified, 1 patient)" in done.stdout
    assert len(PdfReader(pdf).pages) >= 3
    folder = tmp_path / "csv"
    done = ketawatch("export", "csv", "--out", str(folder), "--patient", SECRET_PID, "--db", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["checkins.csv", "patients.csv", "sessions.csv"]
    assert pd.read_csv(folder / "sessions.csv")["patient_id"].unique().tolist() == [SECRET_PID]
    lines = audit_frame(engine, action="export")
    assert lines["actor"].tolist() == [cli_actor(), cli_actor()] and cli_actor().startswith("cli:")
    # where each file went, newest first: the trail named who and what, not where patient data now lies (IG review)
    assert [d["destination"] for d in lines["detail"]] == [str(folder.resolve()), str(pdf.resolve())]


def test_reviewer_gets_one_line_refusal_then_a_deidentified_caseload(db, tmp_path, ketawatch):
    url, engine = db
    out = tmp_path / "caseload.csv"
    refused = ketawatch_process("export", "caseload", "--format", "csv", "--out", str(out), "--as", "rev-one", "--db", url, cwd=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "export refused: a reviewer may only make de-identified exports; add --deidentify"
    assert not out.exists() and audit_frame(engine, action="export").empty
    done = ketawatch("export", "caseload", "--format", "csv", "--out", str(out), "--as", "rev-one", "--deidentify",
                     "--as-of", NOW.date().isoformat(), "--db", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(out, dtype=str)
    assert rows["patient_id"].str.startswith("P-").all() and SECRET_PID not in out.read_text(encoding="utf-8")
    line = audit_frame(engine, action="export").iloc[0]
    assert line["actor"] == "rev-one" and line["detail"]["deidentified"] is True


def test_bad_requests_are_readable(db, tmp_path, ketawatch):
    url, _ = db
    unknown = ketawatch("export", "patient", "NOBODY", "--format", "fhir", "--out", str(tmp_path / "x.json"), "--db", url, cwd=tmp_path)
    assert unknown.returncode == 1 and unknown.stderr.strip() == "export refused: no patient with id 'NOBODY'"
    # a slip of capitals names the patient meant, and nothing near is offered instead (another patient; IG review)
    slip = ketawatch("export", "csv", "--out", str(tmp_path / "slip"), "--patient", SECRET_PID.lower(), "--patient",
                     "NOBODY", "--db", url, cwd=tmp_path)
    assert slip.returncode == 1 and slip.stderr.strip() == (
        f"export refused: no patient with id '{SECRET_PID.lower()}' (did you mean '{SECRET_PID}'?), 'NOBODY'")
    nobody = ketawatch("export", "caseload", "--format", "pdf", "--out", str(tmp_path / "c.pdf"), "--as", "ghost", "--db", url, cwd=tmp_path)
    assert nobody.returncode == 1 and nobody.stderr.startswith("--as ghost: no such KetaWatch account; leave --as out")
    usage = ketawatch("export", "patient", SECRET_PID, "--format", "docx", "--out", str(tmp_path / "x"), "--db", url, cwd=tmp_path)
    assert usage.returncode == 2 and "Traceback" not in usage.stderr
    # a period that ends before it starts is a wrong option like an impossible date: status 2, not 1 (IG review)
    reversed_ = ketawatch("export", "patient", SECRET_PID, "--format", "pdf", "--out", str(tmp_path / "p.pdf"),
                          "--from", "2026-10-01", "--to", "2026-09-01", "--db", url, cwd=tmp_path)
    assert reversed_.returncode == 2, reversed_.stderr
    assert "--from: 2026-10-01 is after --to 2026-09-01; the period must start on or before its last day" in reversed_.stderr
    assert not (tmp_path / "p.pdf").exists()


@pytest.mark.parametrize(("kind", "out", "message"), [
    (("patient", SECRET_PID, "--format", "pdf"), "{tmp}/a-folder", "is a folder; give a file name"),
    (("caseload", "--format", "csv"), "/proc/no-such/c.csv", "the folder /proc/no-such does not exist"),
    (("csv",), "{tmp}/no/such/csv", "does not exist; create it first"),
    (("csv",), "{tmp}/a-file.txt", "is a file; give a folder for csv files"),
    (("xlsx",), "/proc/x.xlsx", "cannot write"),
    # a link's target would silently stay as it was, and a device (/dev/full, as root) became a file of patient data
    (("caseload", "--format", "csv"), "{tmp}/link.csv", "is a link or a device, not a plain file"),
    (("caseload", "--format", "csv"), "{tmp}/a-pipe", "is a link or a device, not a plain file"),
    # a link among the folder's files was found only when writing, after the export was audited (IG review)
    (("csv",), "{tmp}/linked-csv", "linked-csv/sessions.csv is a link or a device, not a plain file; remove it"),
])
def test_an_export_that_cannot_be_written_is_refused_before_it_is_made_and_not_audited(db, tmp_path, ketawatch, kind, out, message):
    url, engine = db
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file.txt").write_text("keep me")
    (tmp_path / "link.csv").symlink_to(tmp_path / "a-file.txt")
    os.mkfifo(tmp_path / "a-pipe")
    (tmp_path / "linked-csv").mkdir()
    (tmp_path / "linked-csv" / "sessions.csv").symlink_to(tmp_path / "a-file.txt")
    target = out.format(tmp=tmp_path)
    refused = ketawatch("export", *kind, "--out", target, "--db", url, cwd=tmp_path)
    assert refused.returncode == 1 and message in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    assert audit_frame(engine, action="export").empty  # nothing was exported, so nothing is recorded as exported
    assert (tmp_path / "a-file.txt").read_text() == "keep me" and not any((tmp_path / "a-folder").iterdir())
    assert (tmp_path / "link.csv").is_symlink() and stat.S_ISFIFO((tmp_path / "a-pipe").lstat().st_mode)


def test_a_link_or_a_device_among_a_folder_export_s_files_is_not_written_over(tmp_path):
    from ketawatch.exports.tables import write_files

    (tmp_path / "out").mkdir()
    (tmp_path / "elsewhere.csv").write_text("keep me")
    (tmp_path / "out" / "patients.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(OSError, match="patients.csv is a link or a device, not a plain file; nothing was written"):
        write_files({"checkins.csv": b"patient_id\nKW-1\n", "patients.csv": b"patient_id\nKW-1\n"}, tmp_path / "out")
    assert (tmp_path / "elsewhere.csv").read_text() == "keep me" and (tmp_path / "out" / "patients.csv").is_symlink()
    # no half-written file left beside it, nor a file written before the link was reached
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["patients.csv"]


def test_export_files_are_readable_by_their_owner_only(db, tmp_path, ketawatch):
    url, _ = db
    pdf, folder = tmp_path / "case.pdf", tmp_path / "csv"
    assert ketawatch("export", "patient", SECRET_PID, "--format", "pdf", "--out", str(pdf), "--db", url).returncode == 0
    assert ketawatch("export", "csv", "--out", str(folder), "--db", url).returncode == 0
    for path in (pdf, *folder.iterdir()):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert folder.stat().st_mode & 0o777 == 0o700  # the folder it made lists its file names to its owner only


def test_an_export_replaces_a_file_already_at_its_path_as_a_nightly_job_needs(db, tmp_path, ketawatch):
    url, _ = db
    out = tmp_path / "caseload.csv"
    out.write_text("yesterday's caseload\n")
    done = ketawatch("export", "caseload", "--format", "csv", "--out", str(out), "--db", url)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("patient_id,") and "yesterday" not in out.read_text()
    assert out.stat().st_mode & 0o777 == 0o600  # and the replacement is private like a new file
