"""The weak spots of the second fault pass: each case below misbehaved before its fix."""

import pytest

from newsclf.model import NewsClassifier
from newsclf.page import ModelSource, article_page
from newsclf.train.cli import _os_error_line
from newsclf.train.config import DataConfig
from newsclf.train.data.articles import DataError
from newsclf.train.data.corrections import read_corrections


def test_a_corrections_csv_saved_by_excel_with_a_byte_order_mark_is_read(tmp_path):
    path = tmp_path / "corrections.csv"
    path.write_bytes("\ufeffid,task,label\nr1,topic,sports\n".encode())
    [correction] = read_corrections(path, DataConfig())
    assert (correction.item_id, correction.line) == ("r1", 2)


def test_a_bad_csv_record_after_a_multi_line_one_is_named_by_its_own_line(tmp_path):
    path = tmp_path / "corrections.csv"
    path.write_text('id,task,label,note\nr1,topic,sports,"two\nlines"\nr2,topic,nonsense,\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"corrections\.csv: line 4"):
        read_corrections(path, DataConfig())


def test_a_short_write_on_a_full_disk_names_the_disk():
    line = _os_error_line(OSError("133870 requested and 69661 written"))
    assert line.startswith("the disk filled up while writing") and "TMPDIR" in line


def test_a_long_single_word_article_gives_a_page_of_its_bounds(tmp_path, small_model_folder):
    page = article_page(NewsClassifier.load(small_model_folder), "x" * 200_000, ModelSource("folder", None, None))
    assert len(page) < 100_000
