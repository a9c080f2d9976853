"""End to end in a real headless Chromium (Debian's package), driven by Playwright.

Each test saves a screenshot of the pages it checks under ``test-artifacts/ui/`` at the
repository root. Chromium must be installed (``.ci/run`` does it):
``apt-get install -y chromium chromium-driver``.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from ui_data import STEPS, loss_at

import seetrain

TIMEOUT_MS = 15_000

# the browser fixture (one Chromium for the session) is in conftest.py: a second sync
# Playwright cannot start while the first runs


@pytest.fixture(scope="session")
def server(store_dir):
    from seetrain.ui import BackgroundServer

    with BackgroundServer(store_dir) as url:
        yield url


@pytest.fixture()
def page(browser):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    pg.on("console", lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    yield pg
    context.close()
    assert not errors, errors


def shot(page, artifacts_dir: str, name: str) -> None:
    page.evaluate("() => window.scrollTo(0, 0)")  # sticky bars would land mid-page otherwise
    page.screenshot(path=os.path.join(artifacts_dir, f"{name}.png"), full_page=True)


def chart_js(key: str, expr: str) -> str:
    """A JS function body evaluated on the first chart of ``key`` (``c``)."""
    return (f"() => {{ const c = [...window.__seetrain.charts.values()].find((c) => c.key === {key!r});"
            f" return c && c.u ? ({expr}) : null; }}")


def wait_chart(page, key: str):
    card = page.locator(f".chart-card[data-key='{key}'][data-state='ready']")
    card.wait_for()
    return card


def line_pixels(page, key: str) -> int:
    """How many pixels of the chart's canvas are drawn in the run colour (indigo #4f46e5)."""
    return page.evaluate(chart_js(key, """(() => {
        const cv = c.u.ctx.canvas, img = c.u.ctx.getImageData(0, 0, cv.width, cv.height).data;
        let n = 0;
        for (let i = 0; i < img.length; i += 4) if (img[i + 2] > 150 && img[i + 2] - img[i] > 60 && img[i + 3] > 100) n++;
        return n; })()"""))


def test_run_list_then_a_run_page_with_its_charts(page, server, run_ids, artifacts_dir):
    page.goto(server + "#/")
    page.locator(".project-card[data-project='vision']").wait_for()
    shot(page, artifacts_dir, "01-projects")
    page.click(".project-card[data-project='vision']")

    rows = page.locator("table.runs-table tbody tr[data-run]")
    rows.first.wait_for()
    assert rows.count() == 2
    assert page.locator("tbody tr[data-run] .status").all_inner_texts() == ["Finished", "Finished"]
    names = lambda: page.locator("tbody tr[data-run] .run-link").all_inner_texts()  # noqa: E731
    assert names() == ["resnet-b", "resnet-a"]  # newest first
    page.click("th[data-col='m:train/loss']")
    assert names() == ["resnet-a", "resnet-b"]  # lowest final loss first
    page.click("th[data-col='m:train/loss']")
    assert names() == ["resnet-b", "resnet-a"]
    assert page.locator(f"tr[data-run='{run_ids['resnet-a']}'] td[data-metric='train/loss']").inner_text() == "0.05"
    page.fill("#runs-filter", "lr=0.01")
    assert names() == ["resnet-b"]
    page.fill("#runs-filter", "")
    assert len(names()) == 2
    shot(page, artifacts_dir, "02-runs-table")

    page.click("text=resnet-a")
    card = wait_chart(page, "train/loss")
    assert page.locator(".run-header h1").inner_text() == "resnet-a"
    drawn = page.evaluate(chart_js("train/loss", "[Array.from(c.u.data[0]), Array.from(c.u.data[1])]"))
    assert drawn[0] == list(range(STEPS))
    assert drawn[1] == pytest.approx([loss_at(s) for s in range(STEPS)])
    assert card.get_attribute("data-points") == str(STEPS) and card.get_attribute("data-exact") == "true"
    assert line_pixels(page, "train/loss") > 100
    assert card.locator(".legend-value").inner_text() == "0.05"  # the last value
    # one section per prefix, in the familiar order, the key without a prefix last
    assert page.locator(".chart-group .group-name").all_inner_texts() == ["train/", "val/", "other"]
    assert page.locator(".chart-group[data-group='val'] .chart-card").count() == 2
    # config and summary beside the charts
    assert "optimizer.momentum" in page.locator(".run-side").inner_text()

    # hover: the legend follows the cursor
    box = card.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + 1, box["y"] + box["height"] / 2)
    page.wait_for_function("() => document.querySelector(\".chart-card[data-key='train/loss'] .legend-x\")"
                           ".textContent.startsWith('step 0')")
    assert card.locator(".legend-value").inner_text() == "2.01"
    shot(page, artifacts_dir, "03-run-page")


def test_chart_options_log_scale_smoothing_and_time_axes(page, server, run_ids):
    page.goto(server + f"#/r/{run_ids['resnet-a']}")
    wait_chart(page, "train/loss")
    page.click("label[for='opt-log']")
    page.wait_for_function(chart_js("train/loss", "c.u.scales.y.distr === 3"))
    page.click("label[for='opt-log']")
    page.wait_for_function(chart_js("train/loss", "c.u.scales.y.distr === 1"))

    page.evaluate("() => { const s = document.querySelector('#opt-smoothing'); s.value = '0.8';"
                  " s.dispatchEvent(new Event('input')); }")
    page.wait_for_function(chart_js("train/loss", "c.u.series.length === 3"))  # x, raw, smoothed
    raw, smooth = page.evaluate(chart_js("train/loss", "[Array.from(c.u.data[1]), Array.from(c.u.data[2])]"))
    assert smooth[0] == pytest.approx(raw[0]) and smooth[10] > raw[10]  # the average lags a falling loss

    page.click("button[data-x='relative']")
    page.wait_for_function(chart_js("train/loss", "c.u.data[0][0] < 60 && !c.u.scales.x.time"))
    page.click("button[data-x='wall']")
    page.wait_for_function(chart_js("train/loss", "c.u.scales.x.time && c.u.data[0][0] > 1e9"))
    page.click("button[data-x='step']")
    page.wait_for_function(chart_js("train/loss", "c.u.data[0][0] === 0"))

    page.fill("#chart-filter", "val/")
    assert page.locator(".chart-card[data-key='train/loss']").is_hidden()
    assert page.locator(".chart-card[data-key='val/loss']").is_visible()


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    """A run of 20,000 points: served downsampled, and exact once zoomed in."""
    from seetrain.ui import BackgroundServer

    directory = str(tmp_path_factory.mktemp("big-ui") / "store")
    run = seetrain.init(project="big", experiment_name="long", dir=directory)
    values = np.cos(np.arange(20_000) / 700.0)
    for step, v in enumerate(values.tolist()):
        run.log({"train/loss": v}, step=step)
    run.finish()
    with BackgroundServer(directory) as url:
        yield url, run.id


def test_zoom_fetches_the_exact_points_and_double_click_resets(page, big_server, artifacts_dir):
    url, rid = big_server
    page.goto(url + f"#/r/{rid}")
    card = wait_chart(page, "train/loss")
    assert card.get_attribute("data-exact") == "false" and card.get_attribute("data-total") == "20000"
    shown = int(card.get_attribute("data-points"))
    assert 200 <= shown <= 4000
    box = card.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.50, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.53, y, steps=5)
    page.mouse.up()
    page.locator(".chart-card[data-key='train/loss'][data-zoomed='true'][data-exact='true']").wait_for()
    steps = page.evaluate(chart_js("train/loss", "Array.from(c.u.data[0])"))
    assert len(steps) > 100 and all(b - a == 1 for a, b in zip(steps, steps[1:]))  # every point of the range
    assert 9_000 < steps[0] < 11_000
    assert page.locator(".chart-card[data-key='train/loss'] .reset-zoom").is_visible()
    shot(page, artifacts_dir, "04-zoomed")
    card.locator(".u-over").dblclick()
    page.locator(".chart-card[data-key='train/loss'][data-zoomed='false']").wait_for()
    assert page.evaluate(chart_js("train/loss", "c.u.data[0].length")) == shown


def test_compare_two_runs_overlays_charts_and_diffs_config(page, server, run_ids, artifacts_dir):
    page.goto(server + "#/p/vision")
    page.locator("tbody tr[data-run]").first.wait_for()
    assert page.locator("#compare-btn").is_disabled()
    for rid in (run_ids["resnet-a"], run_ids["resnet-b"]):
        page.check(f"tr[data-run='{rid}'] td.select input")
    page.click("#compare-btn")
    wait_chart(page, "train/loss")
    assert page.locator(".run-legend .run-chip").count() == 2
    series = page.evaluate(chart_js("train/loss", "c.u.series.slice(1).map((s) => s.label)"))
    assert series == ["resnet-a", "resnet-b"]
    a, b = page.evaluate(chart_js("train/loss", "[Array.from(c.u.data[1]), Array.from(c.u.data[2])]"))
    assert a == pytest.approx([loss_at(s) for s in range(STEPS)])
    assert b == pytest.approx([loss_at(s, 1.5) for s in range(STEPS)])
    legend = page.locator(".chart-card[data-key='train/loss'] .legend").inner_text()
    assert "resnet-a" in legend and "0.05" in legend and "0.07" in legend
    # the diff shows what differs, and everything on demand
    assert page.locator(".diff-table tr.differs[data-section='config'][data-key='lr'] td").all_inner_texts() == ["0.1", "0.01"]
    assert page.locator(".diff-table tr[data-section='config'][data-key='optimizer.name']").count() == 0
    page.click("label[for='only-diff']")
    assert page.locator(".diff-table tr[data-section='config'][data-key='optimizer.name'] td").all_inner_texts() == ["sgd", "sgd"]
    shot(page, artifacts_dir, "05-compare")


def test_image_slider_audio_and_text_panels(page, server, run_ids, artifacts_dir):
    page.goto(server + f"#/r/{run_ids['resnet-a']}")
    panel = page.locator(".media-card[data-key='samples/image']")
    panel.locator("img").wait_for()
    assert panel.get_attribute("data-step") == "40"  # the latest step first

    def colour() -> list[int]:
        page.wait_for_function("() => { const i = document.querySelector(\".media-card[data-key='samples/image'] img\");"
                               " return i && i.complete && i.naturalWidth > 0; }")
        return page.evaluate("""() => {
            const img = document.querySelector(".media-card[data-key='samples/image'] img");
            const cv = document.createElement('canvas'); cv.width = img.naturalWidth; cv.height = img.naturalHeight;
            const ctx = cv.getContext('2d'); ctx.drawImage(img, 0, 0);
            return Array.from(ctx.getImageData(1, 1, 1, 1).data.slice(0, 3)); }""")

    assert colour() == [0, 0, 255]  # step 40 is blue
    slider = panel.locator("input.step-slider")
    slider.evaluate("(s) => { s.value = '0'; s.dispatchEvent(new Event('input')); }")
    assert panel.get_attribute("data-step") == "0"
    assert colour() == [255, 0, 0]  # step 0 is red
    assert panel.locator("figcaption").inner_text() == "step 0"
    panel.locator("button[title='Next step']").click()
    assert panel.get_attribute("data-step") == "20" and colour() == [0, 255, 0]
    panel.locator("button.play").click()  # plays on to the last step, then stops
    page.locator(".media-card[data-key='samples/image'][data-step='40']").wait_for()
    assert slider.input_value() == "2" and panel.locator("button.play").inner_text() == "▶"

    audio = page.locator(".media-card[data-key='samples/audio'] audio")
    page.wait_for_function("() => { const a = document.querySelector(\".media-card[data-key='samples/audio'] audio\");"
                           " return a && a.readyState >= 1 && a.duration > 0; }")
    assert audio.evaluate("(a) => a.duration") == pytest.approx(0.1, abs=0.01)
    text = page.locator(".media-card[data-key='samples/text']")
    assert text.locator("pre").inner_text() == "prediction at step 40"
    text.locator("input.step-slider").evaluate("(s) => { s.value = '1'; s.dispatchEvent(new Event('input')); }")
    assert text.locator("pre").inner_text() == "prediction at step 20"
    shot(page, artifacts_dir, "06-media")


def test_a_running_run_updates_live_without_reloading(page, tmp_path, artifacts_dir):
    from seetrain.ui import BackgroundServer

    directory = str(tmp_path / "live-store")
    run = seetrain.init(project="live", experiment_name="training-now", dir=directory, config={"lr": 0.1})
    for step in range(5):
        run.log({"train/loss": 1.0 / (step + 1)}, step=step)
    try:
        with BackgroundServer(directory) as url:
            page.goto(url + f"#/r/{run.id}")
            page.locator(".run-header .status-running").wait_for()
            page.locator(".chart-card[data-key='train/loss'][data-points='5']").wait_for()
            page.evaluate("() => { window.__marker = 'same page'; }")
            for step in range(5, 12):
                run.log({"train/loss": 1.0 / (step + 1)}, step=step)
            run.log({"val/loss": 0.3}, step=11)  # a new key gets its chart
            page.locator(".chart-card[data-key='train/loss'][data-points='12']").wait_for()
            wait_chart(page, "val/loss")
            drawn = page.evaluate(chart_js("train/loss", "Array.from(c.u.data[1])"))
            assert drawn == pytest.approx([1.0 / (s + 1) for s in range(12)])
            shot(page, artifacts_dir, "07-live")
            run.finish()
            page.locator(".run-header .status-finished").wait_for()
            assert page.evaluate("() => window.__marker") == "same page"  # never reloaded
    finally:
        run.finish()
