import Foundation

/// Minimal SVG charts for benchmark and model reports: a picture beats a table for comparing
/// throughputs. Hand-written because no charting library is available to a Swift server build.
enum SVGChart {
    /// A horizontal bar chart.
    static func bars(title: String, unit: String, _ bars: [(label: String, value: Double)]) -> String {
        let width = 760.0, barHeight = 28.0, gap = 12.0, left = 260.0, top = 50.0
        let height = top + Double(bars.count) * (barHeight + gap) + 30
        let maxValue = max(bars.map(\.value).max() ?? 1, 1e-9)
        var svg = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="Helvetica,Arial,sans-serif" font-size="13">
        <rect width="100%" height="100%" fill="white"/>
        <text x="16" y="28" font-size="16" font-weight="bold">\(escape(title))</text>

        """
        let palette = ["#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948"]
        for (i, bar) in bars.enumerated() {
            let y = top + Double(i) * (barHeight + gap)
            let w = max(1, (width - left - 120) * bar.value / maxValue)
            svg += """
            <text x="\(left - 8)" y="\(y + barHeight * 0.65)" text-anchor="end">\(escape(bar.label))</text>
            <rect x="\(left)" y="\(y)" width="\(w)" height="\(barHeight)" fill="\(palette[i % palette.count])"/>
            <text x="\(left + w + 6)" y="\(y + barHeight * 0.65)">\(format(bar.value)) \(escape(unit))</text>

            """
        }
        return svg + "</svg>\n"
    }

    static func format(_ v: Double) -> String {
        if v >= 1_000_000 { return String(format: "%.2fM", v / 1_000_000) }
        if v >= 1_000 { return String(format: "%.1fk", v / 1_000) }
        return String(format: "%.3g", v)
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
