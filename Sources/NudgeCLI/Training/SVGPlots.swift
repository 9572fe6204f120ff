import Foundation

/// Line charts and signed bar charts for model reports (ROC, calibration, gains, coefficients), in the
/// same hand-written SVG style as ``SVGChart/bars(title:unit:_:)``.
extension SVGChart {
    /// One line of a line chart.
    struct Series {
        var label: String
        var points: [(x: Double, y: Double)]
    }

    static let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7"]

    /// A square chart on [0, 1] × [0, 1] with a dashed diagonal reference (chance for ROC and gains,
    /// perfect calibration for calibration curves) and a legend.
    static func unitLines(title: String, xLabel: String, yLabel: String, _ series: [Series]) -> String {
        let size = 360.0, left = 60.0, top = 44.0, legendWidth = 330.0
        let width = left + size + 30 + legendWidth, height = top + size + 50
        func px(_ x: Double) -> Double { left + min(max(x, 0), 1) * size }
        func py(_ y: Double) -> Double { top + (1 - min(max(y, 0), 1)) * size }
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="Helvetica,Arial,sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="16" y="26" font-size="16" font-weight="bold">\(escape(title))</text>
        <rect x="\(left)" y="\(top)" width="\(size)" height="\(size)" fill="none" stroke="#999"/>

        """
        for tick in stride(from: 0.0, through: 1.0001, by: 0.2) {
            let label = String(format: "%.1f", tick)
            svg += """
            <line x1="\(px(tick))" y1="\(top)" x2="\(px(tick))" y2="\(top + size)" stroke="#eee"/>
            <line x1="\(left)" y1="\(py(tick))" x2="\(left + size)" y2="\(py(tick))" stroke="#eee"/>
            <text x="\(px(tick))" y="\(top + size + 16)" text-anchor="middle">\(label)</text>
            <text x="\(left - 6)" y="\(py(tick) + 4)" text-anchor="end">\(label)</text>

            """
        }
        svg += """
        <line x1="\(px(0))" y1="\(py(0))" x2="\(px(1))" y2="\(py(1))" stroke="#aaa" stroke-dasharray="4 4"/>
        <text x="\(left + size / 2)" y="\(top + size + 36)" text-anchor="middle">\(escape(xLabel))</text>
        <text x="16" y="\(top + size / 2)" text-anchor="middle" transform="rotate(-90 16 \(top + size / 2))">\(escape(yLabel))</text>

        """
        for (i, line) in series.enumerated() {
            let color = palette[i % palette.count]
            let path = line.points.map { String(format: "%.2f,%.2f", px($0.x), py($0.y)) }.joined(separator: " ")
            svg += "<polyline points=\"\(path)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\"/>\n"
            if line.points.count <= 12 {
                for point in line.points {
                    svg += String(format: "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"3\" fill=\"%@\"/>\n", px(point.x), py(point.y), color)
                }
            }
            let y = top + 10 + Double(i) * 20
            svg += """
            <line x1="\(left + size + 30)" y1="\(y)" x2="\(left + size + 52)" y2="\(y)" stroke="\(color)" stroke-width="3"/>
            <text x="\(left + size + 58)" y="\(y + 4)">\(escape(line.label))</text>

            """
        }
        return svg + "</svg>\n"
    }

    /// Horizontal bars around a zero line: negative values to the left, positive to the right.
    static func signedBars(title: String, _ bars: [(label: String, value: Double)]) -> String {
        // Value labels sit beyond the bar ends: keep 60 px free on both sides of the plot for them.
        let width = 800.0, barHeight = 20.0, gap = 8.0, left = 220.0, top = 50.0, margin = 60.0
        let plot = width - left - 2 * margin
        let height = top + Double(bars.count) * (barHeight + gap) + 20
        let largest = max(bars.map { abs($0.value) }.max() ?? 1, 1e-12)
        let zero = left + margin + plot / 2
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="Helvetica,Arial,sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>
        <text x="16" y="28" font-size="16" font-weight="bold">\(escape(title))</text>
        <line x1="\(zero)" y1="\(top - 6)" x2="\(zero)" y2="\(height - 14)" stroke="#999"/>

        """
        for (i, bar) in bars.enumerated() {
            let y = top + Double(i) * (barHeight + gap)
            let w = max(1, plot / 2 * abs(bar.value) / largest)
            let x = bar.value >= 0 ? zero : zero - w
            let color = bar.value >= 0 ? "#e15759" : "#4e79a7"
            let labelX = bar.value >= 0 ? zero + w + 4 : zero - w - 4
            svg += """
            <text x="\(left - 8)" y="\(y + barHeight * 0.7)" text-anchor="end">\(escape(bar.label))</text>
            <rect x="\(x)" y="\(y)" width="\(w)" height="\(barHeight)" fill="\(color)"/>
            <text x="\(labelX)" y="\(y + barHeight * 0.7)" text-anchor="\(bar.value >= 0 ? "start" : "end")">\(String(format: "%+.3f", bar.value))</text>

            """
        }
        return svg + "</svg>\n"
    }
}
