"""Assertions on the CLI shared by test modules."""

from typer.testing import CliRunner

from rlif_cli.main import app

runner = CliRunner()


def ingest_fails(command, path, out, *needles):
    """`rlif-data COMMAND --path PATH --out OUT` exits 2 with one line holding every needle,
    and writes nothing at `out`."""
    result = runner.invoke(app, [command, "--path", str(path), "--out", str(out)])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not out.exists()
