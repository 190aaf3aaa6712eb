"""What the browser tests read off a page that its DOM does not say: what a chart drew on its canvas."""
from __future__ import annotations

BLUE = (47, 91, 211)  # charts.js's first colour: the first venue's lines, the first signal type, the histogram's bars


def pixels_of(page, chart: str, rgb: tuple[int, int, int]) -> int:
    """How many pixels of a chart's canvas are (about) that colour: what uPlot drew, not what it was given."""
    return page.evaluate("""([chart, [r, g, b]]) => {
        const canvas = document.querySelector(`[data-chart="${chart}"] canvas`);
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        let n = 0;
        for (let i = 0; i < data.length; i += 4) {
          const off = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b);
          if (off < 40 && data[i + 3] > 200) n++;
        }
        return n;
    }""", [chart, list(rgb)])
