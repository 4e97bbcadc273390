"""Pure drawing functions: downsampling, sparklines, spectra, scatter, compare overlay."""

from __future__ import annotations

import math

import numpy as np
import tuidata as D

from grokwatch.tui.compare import overlay
from grokwatch.tui.constellation import BRAILLE_BASE, scatter
from grokwatch.tui.model import Model
from grokwatch.tui.runs_table import order
from grokwatch.tui.sparkline import RANGE_W, downsample, spark_text, spark_width
from grokwatch.tui.spectrum import bar_rows, fourier_block, key_freqs
from grokwatch.tui.style import ASCII, UNICODE


def text(cells) -> str:
    return "".join(t for t, _ in cells)


def test_downsample_means_chunks_and_keeps_nan_visible():
    v = np.arange(100, dtype=float)
    d = downsample(v, 10)
    assert len(d) == 10 and d[0] == 4.5 and d[-1] == 94.5
    v[55] = math.nan
    d = downsample(v, 10)
    assert math.isnan(d[5]) and not np.isnan(np.delete(d, 5)).any()
    short = np.array([1.0, 2.0])
    assert downsample(short, 10) is not None and len(downsample(short, 10)) == 2


def test_sparkline_fits_width_and_orders_levels():
    s = spark_text(np.linspace(0, 1, 1000), 40, UNICODE)
    assert len(s) == 40 and s[0] == "▁" and s[-1] == "█"
    assert list(s) == sorted(s, key=UNICODE.spark.index)  # monotone input, monotone line
    assert spark_text(np.array([1.0, math.inf, 2.0]), 10, UNICODE)[1] == UNICODE.nonfinite
    a = spark_text(np.linspace(0, 1, 50), 20, ASCII)
    assert a.isascii() and a[0] == "_" and a[-1] == "#"
    assert len(set(spark_text(np.ones(30), 30, UNICODE))) == 1  # flat: one level, no crash


def test_key_frequencies_are_the_peaks_above_null():
    p = D.fourier(keys=(14, 35, 41))
    keys = key_freqs(p, float(p.mean()))
    assert [k + 1 for k in keys] == [14, 35, 41]
    assert key_freqs(np.full(10, 0.1), 0.1) == []  # flat spectrum: nothing stands out


def test_bar_rows_mark_keys_and_null_level():
    p = D.fourier(keys=(5,))
    rows = bar_rows(p, 48, 8, UNICODE, null=0.5, keys=[4])
    assert len(rows) == 9  # 8 bar rows + axis
    axis = text(rows[-1])
    assert axis[4] == UNICODE.key and axis.count(UNICODE.key) == 1
    col = [text(r)[4] for r in rows[:-1]]
    assert col == [UNICODE.bar_full] * 8  # the peak is the full height
    # null at half height (level 4 of 8): the row starting at level 4 (index 3 from the
    # top) shows the null mark where bars are lower, and the bar where it is higher
    null_row = text(rows[3])
    assert UNICODE.null not in "".join(text(r) for i, r in enumerate(rows[:-1]) if i != 3)
    assert null_row[0] == UNICODE.null and null_row[4] == UNICODE.bar_full
    # More bins than columns: downsampled by max, the peak survives.
    many = np.zeros(500)
    many[333] = 1.0
    r2 = bar_rows(many, 50, 4, ASCII, keys=[333])
    assert text(r2[0]).count("#") == 1 and text(r2[-1]).count("^") == 1


def test_fourier_block_title_names_keys_and_null():
    lines = fourier_block("emb.fourier", 700, D.fourier(), 60, 6, UNICODE)
    title = text(lines[0])
    assert "emb.fourier @ 700" in title and "14 35 41" in title
    assert f"null {D.fourier().mean():.4g}" in title  # the shuffle null: the mean power
    null = np.full(48, 0.3)
    title = text(fourier_block("emb.fourier", 700, D.fourier(), 60, 6, UNICODE, null)[0])
    assert "null 0.3" in title


def test_constellation_circle_uses_braille_and_token_colours():
    rows = scatter(D.constellation(), 24, 12, UNICODE)
    assert len(rows) == 12
    chars = [t for row in rows for t, _ in row if t != " "]
    assert chars and all(BRAILLE_BASE < ord(c) <= BRAILLE_BASE + 0xFF for c in chars)
    # A circle leaves its middle empty.
    assert text(rows[6])[8:16].strip() == ""
    colours = {str(st.color) for row in rows for t, st in row if t != " "}
    assert len(colours) > 10  # coloured by token, not one colour
    plain = scatter(D.constellation(), 24, 12, ASCII)
    assert all(t.isascii() for row in plain for t, _ in row)
    assert scatter(np.full((5, 2), np.nan), 10, 5, UNICODE)[0][0][0] == "(no points)"


def test_overlay_draws_each_run_in_its_own_index():
    s1 = (np.arange(100.0), np.linspace(0, 1, 100))
    s2 = (np.arange(100.0), np.linspace(1, 0, 100))
    cells, x0, x1, y0, y1 = overlay([s1, s2], 40, 10, braille=True)
    owners = {o for row in cells for o, _ in row}
    assert owners == {-1, 0, 1}
    assert (x0, x1, y0, y1) == (0.0, 99.0, 0.0, 1.0)
    # rising line ends top-right, falling line ends bottom-right
    assert cells[0][-1][0] == 0 and cells[-1][-1][0] == 1


def test_order_filters_and_sorts_with_missing_last():
    m = Model()
    m.apply_snapshot(D.snapshot())
    m.runs["memo-wd0"].summary["onset_step"] = None
    assert order(m, "name", False, "") == ["grok-wd1", "memo-wd0", "nan-lr1"]
    assert order(m, "val_acc", True, "") == ["grok-wd1", "memo-wd0", "nan-lr1"]
    assert order(m, "onset", False, "")[0] == "grok-wd1"  # only one has an onset
    assert order(m, "name", False, "MEMO") == ["memo-wd0"]
    assert order(m, "name", False, "diverged") == ["nan-lr1"]  # phase matches too
    assert order(m, "name", False, "live grok") == ["grok-wd1"]  # words AND


def test_by_step_puts_sparse_and_dense_series_on_one_axis():
    from grokwatch.tui.sparkline import by_step

    # Dense loss every step, geometry every 100 steps from step 300: same axis 0..999.
    dense, drawn = by_step(np.arange(1000), np.linspace(1, 0, 1000), 10, 0, 999)
    assert drawn.all() and dense[0] > dense[-1]
    sparse, drawn = by_step(np.arange(300, 1000, 100), np.arange(7.0), 10, 0, 999)
    assert not drawn[:3].any() and drawn[3:].all()  # nothing before its first point
    assert sparse[3] == 0.0 and sparse[-1] == 6.0
    assert (np.diff(sparse[3:]) >= 0).all()  # empty cells repeat the last value
    nan, _ = by_step(np.array([0, 500, 999]), np.array([1.0, math.nan, 2.0]), 3, 0, 999)
    assert math.isnan(nan[1]) and nan[2] == 2.0


def test_alert_axis_marks_alert_steps():
    from grokwatch.tui.sparkline import alert_axis

    m = Model()
    m.apply_snapshot(D.snapshot())
    rv = m.runs["grok-wd1"]
    row = text(alert_axis(rv, 80, 18, 0, 1990, UNICODE))
    line = row[18:18 + spark_width(80, 18, RANGE_W)]
    assert line.index("m") < line.index("o")  # memorized at 210, onset at 1200
    assert abs(line.index("o") / (len(line) - 1) - 1200 / 1990) < 0.03


def test_overlay_lines_have_no_holes():
    steps = np.arange(37.0)  # fewer points than columns: segments must be joined
    cells, *_ = overlay([(steps, np.sqrt(steps))], 50, 12, braille=False)
    cols = {c for row in cells for c, (o, _) in enumerate(row) if o == 0}
    assert cols == set(range(50))


def _detail_lines(rv, width: int = 80) -> list[str]:
    from grokwatch.tui.sparkline import SeriesPanel

    panel = SeriesPanel()
    panel.rv = rv
    return [ln.text for ln in panel.build(width, 40)]


def _run(series: dict) -> Model:
    m = Model()
    m.apply("run", D.update(D.summary("r"), series={
        k: {"steps": list(range(0, 10 * len(v), 10)), "values": [float(x) for x in v]}
        for k, v in series.items()}))
    return m.runs["r"]


def test_accuracies_are_drawn_on_a_fixed_0_1_axis_with_the_axis_shown():
    """Issue 13 item 2: val acc jittering near 0.006 must not be drawn climbing,
    a constant train acc of 1 must be drawn at the top, not half height."""
    x = np.arange(100)
    rv = _run({"val_acc": 0.004 + 0.004 * (x / 99) ** 2, "train_acc": np.ones(100)})
    lines = {ln.split()[0]: ln for ln in _detail_lines(rv) if ln[:1].isalpha()}
    val, train = lines["val_acc"], lines["train_acc"]
    assert set(val.split()[1]) == {"▁"} and "0..1" in val
    assert set(train.split()[1]) == {"█"} and "0..1" in train


def test_metric_and_null_share_one_axis_and_tiny_moves_stay_flat():
    """0.217 vs a null of 0.2182: a 0.5% gap is drawn as one level, not bottom vs top,
    and both rows name the same axis."""
    rv = _run({"embed.fourier_conc": np.full(50, 0.217),
               "embed.fourier_conc_null": np.full(50, 0.2182),
               "val_loss": np.linspace(4.0, 4.01, 50)})
    lines = _detail_lines(rv)
    i = next(i for i, ln in enumerate(lines) if ln.startswith("embed.fourier_conc"))
    metric, null = lines[i], lines[i + 1]
    assert null.lstrip().startswith("null")
    m_line, n_line = metric.split()[1], null.split()[1]
    assert len(set(m_line)) == len(set(n_line)) == 1
    assert abs("▁▂▃▄▅▆▇█".index(m_line[0]) - "▁▂▃▄▅▆▇█".index(n_line[0])) <= 1
    assert metric.split()[-1] == null.split()[-1]  # the same lo..hi
    loss = next(ln for ln in lines if ln.startswith("val_loss"))
    assert len(set(loss.split()[1])) <= 2  # +0.25% drawn (nearly) flat
    assert ".." in loss.split()[-1]


def test_aliased_tensors_share_one_row_naming_both():
    """Issue 13 item 3: embed and neurons given the same weights -> one row per metric."""
    x = np.arange(60, dtype=float)
    same = {"erank": 30 - 0.1 * x, "fourier_conc": 0.1 + 0.001 * x,
            "fourier_conc_null": np.full(60, 0.1)}
    series = {f"{t}.{k}": v for t in ("embed", "neurons") for k, v in same.items()}
    series["other.erank"] = 20 - 0.1 * x
    rv = _run(series)
    text_ = "\n".join(_detail_lines(rv, 120))
    assert "embed=neurons.erank" in text_ and "embed=neurons.fourier_conc" in text_
    assert "neurons.erank" not in text_.replace("embed=neurons.erank", "")
    assert "other.erank" in text_
    assert text_.count("null") == 1


def test_names_cut_to_the_same_text_keep_their_distinguishing_end():
    """Issue 13 item 13: cut in the middle."""
    from grokwatch.tui.sparkline import cut_middle

    a, b = cut_middle("grokking-x+y-p97", 14), cut_middle("grokking-x+y-p97-neurons", 14)
    assert a != b and len(a) == len(b) == 14 and b.endswith("neurons") and a.endswith("p97")
    assert cut_middle("short", 14) == "short"


def test_flat_summed_spectrum_with_concentrated_neurons_says_so():
    """Issue 13 item 9: `train grokking --fast` (Gromov's quadratic MLP) generalizes with
    every neuron on one frequency and all frequencies used, so the summed spectrum is
    flat: a bare `key k: none` over it read as "no structure"."""
    flat = np.full(26, 1.0)
    plain = text(fourier_block("embed.fourier", 600, flat, 60, 4, UNICODE)[0])
    assert "key k: none" in plain and "each neuron" not in plain
    told = text(fourier_block("embed.fourier", 600, flat, 60, 4, UNICODE, conc=(0.27, 0.08))[0])
    assert "none in the sum: each neuron has its own" in told and "0.27" in told
    # A spectrum with a key frequency still names it, whatever the concentration.
    peaked = flat.copy()
    peaked[4] = 10.0
    assert "key k: 5" in text(fourier_block("e.fourier", 1, peaked, 60, 4, UNICODE,
                                            conc=(0.27, 0.08))[0])
