"""``kdzoo plot``: columns of a run folder's metrics.csv against epoch (CTKD's learned temperature, DKD's TCKD/NCKD)."""

import pytest

from conftest import TINY

PNG = b"\x89PNG"


@pytest.mark.parametrize("method, columns", [("ctkd", ["stat_temperature"]),
                                             ("dkd", ["train_dkd_tckd", "train_dkd_nckd"])])
def test_plot_columns_of_a_run(cli, tiny_teacher, tmp_path, method, columns):
    code, _, err = cli("distill", "--teacher", tiny_teacher, "--student", "resnet8", "--method", method, *TINY,
                       "--epochs", "2", "--output-dir", tmp_path, "--name", method)
    assert code == 0, err
    code, out, err = cli("plot", tmp_path / method, "--columns", *columns, "--out", tmp_path / "p.png")
    assert code == 0, err
    assert "plot:" in out and (tmp_path / "p.png").read_bytes().startswith(PNG)
    code, _, err = cli("plot", tmp_path / method, tmp_path / method, "--columns", *columns,
                       "--out", tmp_path / "two.png")
    assert code == 0, err
    code, _, err = cli("plot", tmp_path / method, "--columns", "stat_nothing", "--out", tmp_path / "q.png")
    assert code == 2 and "no column stat_nothing" in err and "train_ce" in err
    code, _, err = cli("plot", tmp_path, "--columns", *columns)
    assert code == 2 and "has no metrics.csv" in err
