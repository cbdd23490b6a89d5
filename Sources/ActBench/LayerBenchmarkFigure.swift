/// One measured figure of a layer benchmark, e.g. `postgres.single_row_commits` = 2,400 `commits/s`.
struct LayerBenchmarkFigure: Codable, Sendable, Hashable {
    /// Dotted name of what was measured.
    var name: String
    /// The measurement.
    var value: Double
    /// The unit of `value`, e.g. `rows/s`.
    var unit: String
}
