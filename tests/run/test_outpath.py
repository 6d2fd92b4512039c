"""--out means one thing for every command: a folder receives the command's files; a file path is
accepted where the command writes a single file (vitbench-predict), refused where it writes several."""

from __future__ import annotations

import pytest

from vitbench.run.outpath import output_file, output_folder


def test_a_single_file_goes_into_a_folder_or_is_the_path(tmp_path):
    (tmp_path / "existing").mkdir()
    assert output_file(tmp_path / "existing", "predictions.csv") == tmp_path / "existing" / "predictions.csv"
    assert output_file(f"{tmp_path}/new/", "predictions.csv") == tmp_path / "new" / "predictions.csv"
    assert output_file(tmp_path / "mine.csv", "predictions.csv") == tmp_path / "mine.csv"


def test_several_files_need_a_folder(tmp_path):
    assert output_folder(tmp_path / "new", "cmd", "a, b") == tmp_path / "new"
    (tmp_path / "file").write_text("kept")
    with pytest.raises(
        ValueError, match=r"--out .*file is a file, but cmd writes several files \(a, b\) into a folder"
    ):
        output_folder(tmp_path / "file", "cmd", "a, b")


@pytest.mark.parametrize("command", ["sample", "compare", "export"])
def test_multi_file_commands_refuse_a_file_before_doing_anything(command, tmp_path, capsys):
    if command == "sample":
        from vitbench.denoising.sample import main
    elif command == "compare":
        from vitbench.compare.compare import main
    else:
        from vitbench.classification.export import main
    (tmp_path / "out.txt").write_text("kept")

    assert main([str(tmp_path / "missing-run"), "--out", str(tmp_path / "out.txt")]) == 2

    assert (
        f"--out {tmp_path / 'out.txt'} is a file, but vitbench-{command} writes several files"
        in capsys.readouterr().err
    )
    assert (tmp_path / "out.txt").read_text() == "kept"
