"""`ketawatch export`: case-review exports from the command line, with the same rules as the dashboard.

    ketawatch export patient ID --format pdf|csv|xlsx|fhir --out PATH [--from DATE] [--to DATE] [--deidentify] [--as USERNAME]
    ketawatch export caseload --format pdf|csv --out PATH [--as-of DATE] [--deidentify] [--as USERNAME]
    ketawatch export csv --out DIR [--patient ID ...] [--deidentify] [--as USERNAME]
    ketawatch export xlsx --out FILE [--patient ID ...] [--deidentify] [--as USERNAME]

`--out` is a file for pdf, xlsx, fhir and the caseload csv, and a folder for the import-format
csv files (patients.csv, sessions.csv, checkins.csv). `--as` names the KetaWatch account the export
is made for: its role applies (a reviewer may only export with --deidentify) and it is recorded
in the audit trail. Without `--as` the export is recorded as `cli:<OS user>` (ketawatch.cli_actor)
with the admin role: whoever runs the command already holds the database.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import List, Optional

import typer

from ketawatch.cli_actor import acting_account
from ketawatch.cli_dates import day_option
from store.vocabulary import ROLES


def _run(build) -> "object":
    """Run an export, turning refusals and bad requests into one readable stderr line (exit status 1)."""
    from ketawatch.cli import fail
    from ketawatch.exports import ExportRefused, PatientNotFound, UnknownFormat

    try:
        return build()
    except (ExportRefused, PatientNotFound, UnknownFormat, ValueError) as exc:
        message = exc.args[0] if exc.args else str(exc)
        fail(f"export refused: {message}" + ("; add --deidentify" if getattr(exc, "deidentified_would_do", False) else ""))


def _check_out(out: Path, *, folder: bool) -> None:
    """Refuse an --out that cannot be written before anything is exported, so a failed export is never audited."""
    from ketawatch.cli import fail
    from ketawatch.exports.tables import FILES, not_a_plain_file

    if folder and out.exists() and not out.is_dir():
        fail(f"--out {out}: is a file; give a folder for csv files")
    if not folder and out.is_dir():
        fail(f"--out {out}: is a folder; give a file name")
    if not folder and not_a_plain_file(out):  # (a folder may be a link: the files in it are what must be plain)
        fail(f"--out {out}: is a link or a device, not a plain file; give the path of a plain file")
    odd = [name for name in FILES.values() if folder and not_a_plain_file(out / name)]
    if odd:  # found here, not when writing: the export would already be in the audit trail (IG review)
        fail(f"--out {out}: {out / odd[0]} is a link or a device, not a plain file; remove it or give another folder")
    if out.exists() and not folder and not os.access(out, os.W_OK):
        fail(f"--out {out}: cannot write (the file is read-only)")
    place = out.parent.resolve()  # a csv export may make its own folder, but never the folders above it
    if not place.exists():
        fail(f"--out {out}: the folder {place} does not exist; create it first (a mistyped path would otherwise "
             "put patient files where nobody looks)")
    existing = out if folder and out.is_dir() else place
    if not existing.is_dir():
        fail(f"--out {out}: {existing} is a file, so no folder can be made there")
    try:  # really try: permission bits say too little (root, /proc, read-only mounts)
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".ketawatch-"):
            pass
    except OSError as exc:
        fail(f"--out {out}: cannot write in {existing} ({exc.strerror or exc})")


def _write(result, out: Path, *, folder: bool) -> list[Path]:
    """Write the export to `out` (a file, or a folder of files), readable by its owner only."""
    from ketawatch.cli import fail
    from ketawatch.exports.tables import write_files, write_private

    try:
        if folder:
            return write_files(result.files, out)
        _name, data, _ = result.download()
        write_private(out, data)
        return [out]
    except OSError as exc:
        fail(f"--out {out}: cannot write ({exc.strerror or exc})")
    return []


def _report(paths: list[Path], deidentified: bool, count: int) -> None:
    kind = "de-identified" if deidentified else "identified"
    typer.echo(f"exported ({kind}, {count} patient{'s' if count != 1 else ''}): " + ", ".join(str(p) for p in paths))


def register(app: typer.Typer) -> None:
    """Add the `export` command group to the main `ketawatch` app."""
    from ketawatch.cli import DbOption

    export_app = typer.Typer(
        name="export",
        help="Case-review exports: patient PDF/CSV/Excel/FHIR, caseload PDF/CSV, import-format CSV. Every export is audited.",
        no_args_is_help=True,
        rich_markup_mode=None,  # plain help: the boxed one showed '--history <bool>', as if a flag took a value
    )

    @export_app.command("patient")
    def patient(
        patient_id: str = typer.Argument(..., metavar="PATIENT_ID", help="The patient's clinic id."),
        fmt: str = typer.Option(..., "--format", metavar="FORMAT", help="pdf (case review), csv (import format, a folder), xlsx, or fhir (R4B bundle JSON)."),
        out: Path = typer.Option(..., "--out", metavar="PATH", help="Output file (a folder for csv)."),
        start: Optional[str] = typer.Option(None, "--from", metavar="DATE", help="First date of the period, YYYY-MM-DD (default: the first record)."),
        end: Optional[str] = typer.Option(None, "--to", metavar="DATE", help="Last date of the period and the date the level is assessed, YYYY-MM-DD (default: today)."),
        deidentify: bool = typer.Option(False, "--deidentify", help="Pseudonym instead of name and id, dates shifted, notes and staff names removed."),
        actor: Optional[str] = typer.Option(None, "--as", metavar="USER", help="KetaWatch username the export is made for (its role applies; audited)."),
        db: Optional[str] = DbOption,
    ) -> None:
        """One patient's case review."""
        from ketawatch.cli import open_db
        from ketawatch.exports import PATIENT_FORMATS, export_patient

        if fmt not in PATIENT_FORMATS:
            raise typer.BadParameter(f"must be one of {', '.join(PATIENT_FORMATS)}", param_hint="--format")
        first, last = day_option(start, "--from"), day_option(end, "--to")
        if first and last and first > last:  # a usage error like any other wrong date option (status 2), said before opening
            raise typer.BadParameter(f"{first.isoformat()} is after --to {last.isoformat()}; the period must start on or "
                                     "before its last day", param_hint="--from")
        _check_out(out, folder=fmt == "csv")
        engine = open_db(db)
        username, role, name = acting_account(engine, actor, roles=ROLES, doing="export")
        result = _run(lambda: export_patient(engine, patient_id, fmt, actor=username, role=role, actor_name=name,
                                             deidentify=deidentify, start=first, end=last, destination=str(out.resolve())))
        _report(_write(result, out, folder=fmt == "csv"), deidentify, 1)

    @export_app.command("caseload")
    def caseload(
        fmt: str = typer.Option(..., "--format", metavar="FORMAT", help="pdf or csv."),
        out: Path = typer.Option(..., "--out", metavar="PATH", help="Output file."),
        as_of: Optional[str] = typer.Option(None, "--as-of", metavar="DATE", help="Date YYYY-MM-DD (default: today in the clinic's time zone)."),
        deidentify: bool = typer.Option(False, "--deidentify", help="Pseudonyms, shifted dates, no names."),
        actor: Optional[str] = typer.Option(None, "--as", metavar="USER", help="KetaWatch username the export is made for (its role applies; audited)."),
        db: Optional[str] = DbOption,
    ) -> None:
        """Amber and red patients under care (and any recent PHQ-9 question 9 answer), with level, reasons and last review."""
        from ketawatch.cli import open_db
        from ketawatch.exports import CASELOAD_FORMATS, export_caseload

        if fmt not in CASELOAD_FORMATS:
            raise typer.BadParameter(f"must be one of {', '.join(CASELOAD_FORMATS)}", param_hint="--format")
        when = day_option(as_of, "--as-of")
        _check_out(out, folder=False)
        engine = open_db(db)
        username, role, name = acting_account(engine, actor, roles=ROLES, doing="export")
        result = _run(lambda: export_caseload(engine, fmt, actor=username, role=role, actor_name=name, deidentify=deidentify,
                                              as_of=when, destination=str(out.resolve())))
        _report(_write(result, out, folder=False), deidentify, len(result.patient_ids))

    def _records(fmt: str, out: Path, patients: list[str] | None, deidentify: bool, actor: str | None, db: str | None) -> None:
        from ketawatch.cli import open_db
        from ketawatch.exports import export_records

        _check_out(out, folder=fmt == "csv")
        engine = open_db(db)
        username, role, _ = acting_account(engine, actor, roles=ROLES, doing="export")
        result = _run(lambda: export_records(engine, fmt, actor=username, role=role, patient_ids=patients or None,
                                             deidentify=deidentify, destination=str(out.resolve())))
        _report(_write(result, out, folder=fmt == "csv"), deidentify, len(result.patient_ids))

    @export_app.command("csv")
    def csv_(
        out: Path = typer.Option(..., "--out", metavar="PATH", help="Folder for patients.csv, sessions.csv and checkins.csv."),
        patients: Optional[List[str]] = typer.Option(None, "--patient", metavar="ID", help="A patient id; repeat for several (default: everyone)."),
        deidentify: bool = typer.Option(False, "--deidentify", help="Pseudonyms, shifted dates, no names, notes or birth years."),
        actor: Optional[str] = typer.Option(None, "--as", metavar="USER", help="KetaWatch username the export is made for (its role applies; audited)."),
        db: Optional[str] = DbOption,
    ) -> None:
        """Records in the import format (see the README's Import format section); `ketawatch import` of the folder reproduces them."""
        _records("csv", out, patients, deidentify, actor, db)

    @export_app.command("xlsx")
    def xlsx(
        out: Path = typer.Option(..., "--out", metavar="PATH", help="Output .xlsx file."),
        patients: Optional[List[str]] = typer.Option(None, "--patient", metavar="ID", help="A patient id; repeat for several (default: everyone)."),
        deidentify: bool = typer.Option(False, "--deidentify", help="Pseudonyms, shifted dates, age bands, no names or notes."),
        actor: Optional[str] = typer.Option(None, "--as", metavar="USER", help="KetaWatch username the export is made for (its role applies; audited)."),
        db: Optional[str] = DbOption,
    ) -> None:
        """An Excel workbook: one sheet per table plus current levels and level history."""
        _records("xlsx", out, patients, deidentify, actor, db)

    app.add_typer(export_app, name="export")
