/// Why a benchmark stopped, as one sentence for the terminal (ArgumentParser prints it after `Error:`).
struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
