struct LayerBenchmarkFigure: Codable { var name: String; var value: Double; var unit: String }
